//! Download progress: bars on a terminal, one line per event otherwise.

use std::io::{IsTerminal, Read};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProgressMode {
    /// Bars when stderr is a terminal, lines when it is not.
    Auto,
    Lines,
    Quiet,
}

pub(crate) enum Reporter {
    Bars(MultiProgress),
    Lines,
    Quiet,
}

impl Reporter {
    pub fn new(mode: ProgressMode) -> Reporter {
        match mode {
            ProgressMode::Auto if std::io::stderr().is_terminal() => {
                Reporter::Bars(MultiProgress::with_draw_target(ProgressDrawTarget::stderr()))
            }
            ProgressMode::Auto | ProgressMode::Lines => Reporter::Lines,
            ProgressMode::Quiet => Reporter::Quiet,
        }
    }

    pub fn line(&self, msg: &str) {
        match self {
            Reporter::Bars(m) => {
                let _ = m.println(msg);
            }
            Reporter::Lines => eprintln!("{msg}"),
            Reporter::Quiet => {}
        }
    }

    /// A bar (or start line) for one blob of `size` bytes.
    pub fn blob(&self, label: &str, size: u64) -> Option<ProgressBar> {
        match self {
            Reporter::Bars(m) => {
                let bar = m.add(ProgressBar::new(size));
                let style =
                    ProgressStyle::with_template("{prefix} [{bar:30}] {bytes}/{total_bytes} {msg}")
                        .expect("valid template")
                        .progress_chars("=> ");
                bar.set_style(style);
                bar.set_prefix(label.to_string());
                Some(bar)
            }
            Reporter::Lines => {
                eprintln!("{label}: downloading {size} bytes");
                None
            }
            Reporter::Quiet => None,
        }
    }

    pub fn done(&self, bar: Option<ProgressBar>, label: &str, msg: &str) {
        match bar {
            Some(b) => b.finish_with_message(msg.to_string()),
            None => {
                if matches!(self, Reporter::Lines) {
                    eprintln!("{label}: {msg}");
                }
            }
        }
    }
}

/// Advances a bar as bytes are read.
pub(crate) struct Counting<R> {
    pub inner: R,
    pub bar: Option<ProgressBar>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        if let Some(b) = &self.bar {
            b.inc(n as u64);
        }
        Ok(n)
    }
}
