//! A tiny sd_notify(3) for the test containers, which have no libc: sends
//! each argument as one datagram to $NOTIFY_SOCKET. Built static by the
//! notify tests.

use std::os::unix::net::UnixDatagram;

fn main() {
    let path = std::env::var("NOTIFY_SOCKET").expect("NOTIFY_SOCKET is not set");
    let socket = UnixDatagram::unbound().expect("socket");
    for msg in std::env::args().skip(1) {
        if let Err(e) = socket.send_to(msg.as_bytes(), &path) {
            eprintln!("sd-notify: send to {path}: {e}");
            std::process::exit(1);
        }
    }
}
