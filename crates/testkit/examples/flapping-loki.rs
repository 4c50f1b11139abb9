//! A test Loki on `127.0.0.1:PORT` that flips between healthy and HTTP
//! 500 every PERIOD seconds, for the soak run (scripts/soak.sh).
//!
//!     cargo run --release -p faultline-testkit --example flapping-loki -- PORT PERIOD

use std::time::Duration;

use faultline_testkit::loki::{Mode, TestLoki};

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let port: u16 = args.next().and_then(|p| p.parse().ok()).unwrap_or(3100);
    let period: u64 = args.next().and_then(|p| p.parse().ok()).unwrap_or(30);
    let (loki, url) = TestLoki::start_on(port, None).await;
    println!("{url}");
    let mut healthy = true;
    loop {
        tokio::time::sleep(Duration::from_secs(period)).await;
        healthy = !healthy;
        loki.set_mode(if healthy {
            Mode::Healthy
        } else {
            Mode::Failing
        });
    }
}
