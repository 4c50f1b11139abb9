//! The `watch` config loader on arbitrary text, with `${NAME}`
//! interpolation: a config or its problems, never a panic.
#![no_main]

use faultline::watch::config::Config;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let env = |name: &str| (name.len() % 2 == 0).then(|| format!("value-of-{name}"));
    match Config::parse("fuzz.yaml", text, &env, &|_| Ok(())) {
        Ok(config) => {
            let _ = config.as_args(|_| false);
        }
        Err(problems) => {
            let _ = problems.to_string();
        }
    }
});
