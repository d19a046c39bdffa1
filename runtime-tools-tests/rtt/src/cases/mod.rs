//! The cases, each named after the spec requirement it checks.
//!
//! - `config`, `linux`: a config field is set, the probe checks the live
//!   process.
//! - `lifecycle`: state, create, start, kill, delete, pid file, console
//!   socket, preserve-fds.
//! - `hooks`: each kind, order, state on stdin, failures.
//! - `invalid`: configs a runtime MUST refuse.

mod config;
mod hooks;
mod invalid;
mod lifecycle;
mod linux;

use crate::suite::{Ctx, R};

pub struct Case {
    pub name: String,
    pub run: Box<dyn Fn(&mut Ctx) -> R>,
}

pub fn case(name: impl Into<String>, run: impl Fn(&mut Ctx) -> R + 'static) -> Case {
    Case {
        name: name.into(),
        run: Box::new(run),
    }
}

pub fn all() -> Vec<Case> {
    let mut v = config::cases();
    v.extend(linux::cases());
    v.extend(lifecycle::cases());
    v.extend(hooks::cases());
    v.extend(invalid::cases());
    v
}
