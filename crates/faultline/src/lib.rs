//! The library behind the `faultline` command: offline replay of log
//! archives. The binary (`src/main.rs`) adds the command line around it;
//! benches and tests drive [`replay::replay`] directly.

mod cri;
pub mod replay;
mod stream;
