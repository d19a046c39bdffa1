//! `ps` for a container: the host's `ps` output cut down to the
//! container's processes (the rows whose PID column is one of them).

use crate::error::{Error, Result};

/// Runs `ps ARGS` (default `-ef`) and keeps the header and the rows of
/// `pids`.
pub fn table(pids: &[i32], args: &[String]) -> Result<String> {
    let args: Vec<String> = if args.is_empty() {
        vec!["-ef".into()]
    } else {
        args.to_vec()
    };
    let what = format!("ps {}", args.join(" "));
    let out = std::process::Command::new("ps")
        .args(&args)
        .output()
        .map_err(|e| Error::io("run", "ps", e))?;
    if !out.status.success() {
        return Err(Error::Ps {
            command: what,
            reason: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    filter(&String::from_utf8_lossy(&out.stdout), pids).ok_or(Error::Ps {
        command: what,
        reason: "its output has no PID column".into(),
    })
}

fn filter(text: &str, pids: &[i32]) -> Option<String> {
    let mut lines = text.lines();
    let header = lines.next().unwrap_or_default();
    let col = header.split_whitespace().position(|h| h == "PID")?;
    let mut out = format!("{header}\n");
    for line in lines {
        let pid = line
            .split_whitespace()
            .nth(col)
            .and_then(|p| p.parse::<i32>().ok());
        if pid.is_some_and(|p| pids.contains(&p)) {
            out.push_str(line);
            out.push('\n');
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_header_and_the_container_rows() {
        let text = "UID PID PPID CMD\nroot 1 0 init\nroot 42 1 sleep\nroot 43 42 sh\n";
        assert_eq!(
            filter(text, &[42, 43]).unwrap(),
            "UID PID PPID CMD\nroot 42 1 sleep\nroot 43 42 sh\n"
        );
        assert_eq!(filter("USER CMD\nroot init\n", &[1]), None);
    }
}
