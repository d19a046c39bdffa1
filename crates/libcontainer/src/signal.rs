//! Signal names and numbers as `kill` accepts them: "TERM", "SIGTERM", "15".

use nix::sys::signal::Signal;

use crate::error::{Error, Result};

/// Parse a signal the way runc does.
pub fn parse(s: &str) -> Result<i32> {
    if let Ok(n) = s.parse::<i32>() {
        let max = libc::SIGRTMAX();
        if n <= 0 || n > max {
            return Err(Error::InvalidSignal(s.into()));
        }
        return Ok(n);
    }
    let upper = s.to_ascii_uppercase();
    let name = if upper.starts_with("SIG") {
        upper
    } else {
        format!("SIG{upper}")
    };
    if let Some(off) = name.strip_prefix("SIGRTMIN+") {
        if let Ok(n) = off.parse::<i32>() {
            let sig = libc::SIGRTMIN() + n;
            if sig <= libc::SIGRTMAX() {
                return Ok(sig);
            }
        }
    }
    if let Some(off) = name.strip_prefix("SIGRTMAX-") {
        if let Ok(n) = off.parse::<i32>() {
            let sig = libc::SIGRTMAX() - n;
            if sig >= libc::SIGRTMIN() {
                return Ok(sig);
            }
        }
    }
    match name.as_str() {
        "SIGRTMIN" => return Ok(libc::SIGRTMIN()),
        "SIGRTMAX" => return Ok(libc::SIGRTMAX()),
        _ => {}
    }
    name.parse::<Signal>()
        .map(|s| s as i32)
        .map_err(|_| Error::InvalidSignal(s.into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms() {
        for (s, n) in [
            ("TERM", 15),
            ("SIGTERM", 15),
            ("term", 15),
            ("15", 15),
            ("KILL", 9),
            ("SIGUSR1", 10),
            ("HUP", 1),
        ] {
            assert_eq!(parse(s).unwrap(), n, "{s}");
        }
        assert_eq!(parse("RTMIN+1").unwrap(), libc::SIGRTMIN() + 1);
        for bad in ["", "NOPE", "0", "-1", "999", "SIG"] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
    }
}
