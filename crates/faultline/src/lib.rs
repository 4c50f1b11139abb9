//! The library behind the `faultline` command: offline replay of log
//! archives, and watching live sources. The binary (`src/main.rs`) adds the command line around it;
//! benches and tests drive [`replay::replay`] directly.

mod cri;
mod facts;
pub mod replay;
mod setup;
mod stream;
pub mod watch;
