//! A TCP proxy in front of a registry that breaks or corrupts the first
//! full download of one blob: to test resumed downloads and rejection.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;
use std::thread;

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Close the connection after this many bytes of the response.
    CutAfter(usize),
    /// Flip one byte of the body, this many bytes into the response.
    FlipAt(usize),
}

pub struct Proxy {
    pub addr: String,
    /// Times the fault was injected.
    pub hits: Arc<AtomicU32>,
    /// Range requests seen (resumes).
    pub ranges: Arc<AtomicU32>,
}

/// Proxies to `upstream`; `fault` hits every full (non-Range) GET of the
/// blob `digest`, `times` times at most.
pub fn start(upstream: &str, digest: &str, fault: Fault, times: u32) -> Proxy {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let hits = Arc::new(AtomicU32::new(0));
    let ranges = Arc::new(AtomicU32::new(0));
    let (h, r) = (hits.clone(), ranges.clone());
    let upstream = upstream.to_string();
    let blob = format!("/blobs/{digest}");
    thread::spawn(move || {
        for client in listener.incoming().flatten() {
            let Ok(server) = TcpStream::connect(&upstream) else {
                continue;
            };
            let armed = Arc::new(AtomicBool::new(false));
            let (c2, s2) = (client.try_clone().unwrap(), server.try_clone().unwrap());
            let (a, h2, r2, blob) = (armed.clone(), h.clone(), r.clone(), blob.clone());
            // client -> server: watch request heads.
            thread::spawn(move || {
                let (mut c, mut s) = (c2, s2);
                let mut buf = [0u8; 16384];
                while let Ok(n) = c.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    let head = String::from_utf8_lossy(&buf[..n]).to_ascii_lowercase();
                    if head.starts_with("get ") && head.contains(&blob) {
                        if head.contains("\r\nrange:") {
                            r2.fetch_add(1, Ordering::SeqCst);
                        } else if h2.load(Ordering::SeqCst) < times {
                            h2.fetch_add(1, Ordering::SeqCst);
                            a.store(true, Ordering::SeqCst);
                        }
                    }
                    if s.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
                let _ = s.shutdown(Shutdown::Write);
            });
            // server -> client: inject the fault into an armed response.
            let (mut s, mut c) = (server, client);
            thread::spawn(move || {
                let mut buf = [0u8; 4096];
                let mut sent = 0usize;
                while let Ok(n) = s.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    if armed.load(Ordering::SeqCst) {
                        match fault {
                            Fault::CutAfter(limit) if sent + n >= limit => {
                                let _ = c.write_all(&buf[..limit - sent]);
                                let _ = c.shutdown(Shutdown::Both);
                                let _ = s.shutdown(Shutdown::Both);
                                return;
                            }
                            Fault::FlipAt(at) if sent <= at && at < sent + n => {
                                buf[at - sent] ^= 0x55
                            }
                            _ => {}
                        }
                        sent += n;
                    }
                    if c.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
                let _ = c.shutdown(Shutdown::Write);
            });
        }
    });
    Proxy { addr, hits, ranges }
}
