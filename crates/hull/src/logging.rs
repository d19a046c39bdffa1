//! A small `tracing` subscriber writing runc-style log lines: logrus text
//! (`time=".." level=.. msg=".."`) or JSON objects with `level`, `msg`,
//! `time`, one per line, to stderr or a file opened with O_APPEND.

use std::fmt::Write as _;
use std::fs::File;
use std::io::Write;
use std::sync::Mutex;

use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Level, Metadata, Subscriber};

use crate::cli::LogFormat;

pub struct Logger {
    format: LogFormat,
    max: Level,
    file: Option<Mutex<File>>,
}

struct Message(String);

impl Visit for Message {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.0, "{value:?}");
        } else {
            let _ = write!(self.0, " {}={value:?}", field.name());
        }
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.0.push_str(value);
        } else {
            let _ = write!(self.0, " {}={value:?}", field.name());
        }
    }
}

fn level_name(l: &Level) -> &'static str {
    match *l {
        Level::ERROR => "error",
        Level::WARN => "warning",
        Level::INFO => "info",
        Level::DEBUG => "debug",
        Level::TRACE => "trace",
    }
}

impl Logger {
    pub fn new(format: LogFormat, debug: bool, file: Option<File>) -> Logger {
        Logger {
            format,
            max: if debug { Level::DEBUG } else { Level::WARN },
            file: file.map(Mutex::new),
        }
    }

    /// Format one line.
    pub fn line(&self, level: &Level, msg: &str) -> String {
        let time = libcontainer::time::now_rfc3339(false);
        match self.format {
            LogFormat::Json => {
                let v = serde_json::json!({"level": level_name(level), "msg": msg, "time": time});
                format!("{v}\n")
            }
            LogFormat::Text => format!(
                "time={time:?} level={} msg={}\n",
                level_name(level),
                serde_json::Value::from(msg)
            ),
        }
    }

    /// Write a line to the log file, or stderr without one.
    pub fn write(&self, level: &Level, msg: &str) {
        let line = self.line(level, msg);
        match &self.file {
            Some(f) => {
                if let Ok(mut f) = f.lock() {
                    let _ = f.write_all(line.as_bytes());
                }
            }
            None => {
                let _ = std::io::stderr().write_all(line.as_bytes());
            }
        }
    }

    pub fn has_file(&self) -> bool {
        self.file.is_some()
    }
}

impl Subscriber for &'static Logger {
    fn enabled(&self, meta: &Metadata<'_>) -> bool {
        *meta.level() <= self.max
    }
    fn new_span(&self, _: &Attributes<'_>) -> Id {
        Id::from_u64(1)
    }
    fn record(&self, _: &Id, _: &Record<'_>) {}
    fn record_follows_from(&self, _: &Id, _: &Id) {}
    fn event(&self, event: &Event<'_>) {
        let mut m = Message(String::new());
        event.record(&mut m);
        self.write(event.metadata().level(), &m.0);
    }
    fn enter(&self, _: &Id) {}
    fn exit(&self, _: &Id) {}
}
