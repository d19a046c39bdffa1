//! A minimal D-Bus client: enough of the wire protocol to call systemd's
//! manager (method calls with basic types, arrays, structs and variants;
//! replies and errors read back). No D-Bus crate does this without a large
//! dependency tree or a C library, and systemd's API needs only this much.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

/// A D-Bus value to send.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Byte(u8),
    Bool(bool),
    U32(u32),
    U64(u64),
    I32(i32),
    I64(i64),
    Str(String),
    /// An array with its element signature (needed when it is empty).
    Array(String, Vec<Value>),
    Struct(Vec<Value>),
    Variant(Box<Value>),
}

impl Value {
    pub fn str(s: impl Into<String>) -> Value {
        Value::Str(s.into())
    }

    pub fn signature(&self) -> String {
        match self {
            Value::Byte(_) => "y".into(),
            Value::Bool(_) => "b".into(),
            Value::U32(_) => "u".into(),
            Value::U64(_) => "t".into(),
            Value::I32(_) => "i".into(),
            Value::I64(_) => "x".into(),
            Value::Str(_) => "s".into(),
            Value::Array(elem, _) => format!("a{elem}"),
            Value::Struct(fields) => {
                let inner: String = fields.iter().map(Value::signature).collect();
                format!("({inner})")
            }
            Value::Variant(_) => "v".into(),
        }
    }
}

/// Alignment of the type that a signature starts with.
fn alignment(sig: &str) -> usize {
    match sig.as_bytes().first() {
        Some(b'y' | b'g' | b'v') => 1,
        Some(b'n' | b'q') => 2,
        Some(b'x' | b't' | b'd' | b'(' | b'{') => 8,
        _ => 4,
    }
}

/// A message body or header being marshalled (little endian).
#[derive(Default)]
struct Encoder {
    buf: Vec<u8>,
}

impl Encoder {
    fn pad(&mut self, n: usize) {
        while !self.buf.len().is_multiple_of(n) {
            self.buf.push(0);
        }
    }

    fn u32(&mut self, v: u32) {
        self.pad(4);
        self.buf.extend_from_slice(&v.to_le_bytes());
    }

    fn string(&mut self, s: &str) {
        self.u32(s.len() as u32);
        self.buf.extend_from_slice(s.as_bytes());
        self.buf.push(0);
    }

    fn signature(&mut self, s: &str) {
        self.buf.push(s.len() as u8);
        self.buf.extend_from_slice(s.as_bytes());
        self.buf.push(0);
    }

    fn value(&mut self, v: &Value) {
        match v {
            Value::Byte(b) => self.buf.push(*b),
            Value::Bool(b) => self.u32(u32::from(*b)),
            Value::U32(n) => self.u32(*n),
            Value::U64(n) => {
                self.pad(8);
                self.buf.extend_from_slice(&n.to_le_bytes());
            }
            Value::I32(n) => self.u32(*n as u32),
            Value::I64(n) => {
                self.pad(8);
                self.buf.extend_from_slice(&n.to_le_bytes());
            }
            Value::Str(s) => self.string(s),
            Value::Array(elem, items) => {
                self.u32(0);
                let len_at = self.buf.len() - 4;
                self.pad(alignment(elem));
                let start = self.buf.len();
                for i in items {
                    self.value(i);
                }
                let len = (self.buf.len() - start) as u32;
                self.buf[len_at..len_at + 4].copy_from_slice(&len.to_le_bytes());
            }
            Value::Struct(fields) => {
                self.pad(8);
                for f in fields {
                    self.value(f);
                }
            }
            Value::Variant(inner) => {
                self.signature(&inner.signature());
                self.value(inner);
            }
        }
    }
}

/// What came back for a method call.
#[derive(Debug)]
pub enum Reply {
    Return,
    /// Error name and message.
    Error(String, String),
}

#[derive(Debug, thiserror::Error)]
pub enum DbusError {
    #[error("{0}: {1}")]
    Io(&'static str, std::io::Error),
    #[error("{0}")]
    Protocol(String),
}

/// A connection to a D-Bus peer (systemd's private socket or the system
/// bus), authenticated with EXTERNAL (our uid).
pub struct Connection {
    sock: UnixStream,
    serial: u32,
    /// Set on a bus (the bus daemon routes by destination).
    destination: Option<String>,
}

const HEADER_PATH: u8 = 1;
const HEADER_INTERFACE: u8 = 2;
const HEADER_MEMBER: u8 = 3;
const HEADER_ERROR_NAME: u8 = 4;
const HEADER_REPLY_SERIAL: u8 = 5;
const HEADER_DESTINATION: u8 = 6;
const HEADER_SIGNATURE: u8 = 8;

const METHOD_CALL: u8 = 1;
const METHOD_RETURN: u8 = 2;
const ERROR: u8 = 3;

impl Connection {
    /// Connect and authenticate. On a bus (`destination` set) also say
    /// Hello, as the bus requires before any other call.
    pub fn open(path: &Path, destination: Option<&str>) -> Result<Connection, DbusError> {
        let sock = UnixStream::connect(path).map_err(|e| DbusError::Io("connect", e))?;
        sock.set_read_timeout(Some(Duration::from_secs(25)))
            .map_err(|e| DbusError::Io("set timeout", e))?;
        let mut c = Connection {
            sock,
            serial: 0,
            destination: destination.map(String::from),
        };
        c.auth()?;
        if c.destination.is_some() {
            let hello = c.call_to(
                "org.freedesktop.DBus",
                "/org/freedesktop/DBus",
                "org.freedesktop.DBus",
                "Hello",
                &[],
            )?;
            if let Reply::Error(name, msg) = hello {
                return Err(DbusError::Protocol(format!("Hello: {name}: {msg}")));
            }
        }
        Ok(c)
    }

    fn auth(&mut self) -> Result<(), DbusError> {
        // SAFETY: geteuid cannot fail.
        let uid = unsafe { libc::geteuid() }.to_string();
        let hex: String = uid.bytes().map(|b| format!("{b:02x}")).collect();
        // BEGIN goes with AUTH, as sd-bus clients send it: systemd 252
        // leaves a message unanswered that reaches it in one read with a
        // separately sent BEGIN. Messages follow once OK has come.
        self.sock
            .write_all(format!("\0AUTH EXTERNAL {hex}\r\nBEGIN\r\n").as_bytes())
            .map_err(|e| DbusError::Io("write auth", e))?;
        let mut line = Vec::new();
        let mut b = [0u8; 1];
        while !line.ends_with(b"\r\n") {
            match self.sock.read(&mut b) {
                Ok(0) => return Err(DbusError::Protocol("connection closed during auth".into())),
                Ok(_) => line.push(b[0]),
                Err(e) => return Err(DbusError::Io("read auth", e)),
            }
            if line.len() > 512 {
                return Err(DbusError::Protocol("auth line too long".into()));
            }
        }
        if !line.starts_with(b"OK ") {
            let text = String::from_utf8_lossy(&line);
            return Err(DbusError::Protocol(format!(
                "authentication refused: {}",
                text.trim()
            )));
        }
        Ok(())
    }

    /// Call a method of systemd's manager object.
    pub fn call_manager(&mut self, member: &str, args: &[Value]) -> Result<Reply, DbusError> {
        self.call_to(
            "org.freedesktop.systemd1",
            "/org/freedesktop/systemd1",
            "org.freedesktop.systemd1.Manager",
            member,
            args,
        )
    }

    fn call_to(
        &mut self,
        destination: &str,
        path: &str,
        interface: &str,
        member: &str,
        args: &[Value],
    ) -> Result<Reply, DbusError> {
        self.serial += 1;
        let serial = self.serial;
        let msg = method_call(
            serial,
            self.destination.as_ref().map(|_| destination),
            path,
            interface,
            member,
            args,
        );
        self.sock
            .write_all(&msg)
            .map_err(|e| DbusError::Io("write", e))?;
        loop {
            let (kind, header, body) = self.read_message()?;
            let fields = parse_header_fields(&header)?;
            if fields.reply_serial != Some(serial) {
                continue; // a signal, or a reply to something else
            }
            return Ok(match kind {
                METHOD_RETURN => Reply::Return,
                ERROR => Reply::Error(
                    fields.error_name.unwrap_or_default(),
                    first_string(&fields.signature, &body).unwrap_or_default(),
                ),
                k => return Err(DbusError::Protocol(format!("unexpected message type {k}"))),
            });
        }
    }

    /// One message: its type, the header fields array, the body.
    fn read_message(&mut self) -> Result<(u8, Vec<u8>, Vec<u8>), DbusError> {
        let mut fixed = [0u8; 16];
        self.sock
            .read_exact(&mut fixed)
            .map_err(|e| DbusError::Io("read", e))?;
        if fixed[0] != b'l' {
            return Err(DbusError::Protocol(
                "big-endian messages are not supported".into(),
            ));
        }
        let body_len = u32::from_le_bytes(fixed[4..8].try_into().expect("4 bytes")) as usize;
        let fields_len = u32::from_le_bytes(fixed[12..16].try_into().expect("4 bytes")) as usize;
        if body_len > 1 << 26 || fields_len > 1 << 26 {
            return Err(DbusError::Protocol("message too large".into()));
        }
        let padded = fields_len.div_ceil(8) * 8;
        let mut rest = vec![0u8; padded + body_len];
        self.sock
            .read_exact(&mut rest)
            .map_err(|e| DbusError::Io("read", e))?;
        // The fields array starts at offset 16 of the message: keep offsets
        // relative to the message start for alignment.
        let mut header = fixed.to_vec();
        header.extend_from_slice(&rest[..fields_len]);
        let body = rest[padded..].to_vec();
        Ok((fixed[1], header, body))
    }
}

fn method_call(
    serial: u32,
    destination: Option<&str>,
    path: &str,
    interface: &str,
    member: &str,
    args: &[Value],
) -> Vec<u8> {
    let mut body = Encoder::default();
    for a in args {
        body.value(a);
    }
    let sig: String = args.iter().map(Value::signature).collect();
    let mut fields = vec![
        (HEADER_PATH, "o", path),
        (HEADER_INTERFACE, "s", interface),
        (HEADER_MEMBER, "s", member),
    ];
    if let Some(d) = destination {
        fields.push((HEADER_DESTINATION, "s", d));
    }
    if !sig.is_empty() {
        fields.push((HEADER_SIGNATURE, "g", &sig));
    }
    let mut h = Encoder::default();
    h.buf.extend_from_slice(&[b'l', METHOD_CALL, 0, 1]);
    h.u32(body.buf.len() as u32);
    h.u32(serial);
    h.u32(0);
    let start = h.buf.len();
    for (code, typ, value) in fields {
        h.pad(8);
        h.buf.push(code);
        h.signature(typ);
        if typ == "g" {
            h.signature(value);
        } else {
            h.string(value);
        }
    }
    let len = (h.buf.len() - start) as u32;
    h.buf[12..16].copy_from_slice(&len.to_le_bytes());
    h.pad(8);
    h.buf.extend_from_slice(&body.buf);
    h.buf
}

#[derive(Default)]
struct HeaderFields {
    reply_serial: Option<u32>,
    error_name: Option<String>,
    signature: String,
}

/// A reader over a message part; offsets count from the message start.
struct Decoder<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl Decoder<'_> {
    fn err(what: &str) -> DbusError {
        DbusError::Protocol(format!("malformed message: {what}"))
    }

    fn align(&mut self, n: usize) {
        self.pos = self.pos.div_ceil(n) * n;
    }

    fn take(&mut self, n: usize) -> Result<&[u8], DbusError> {
        let end = self.pos.checked_add(n).ok_or_else(|| Self::err("length"))?;
        let s = self
            .buf
            .get(self.pos..end)
            .ok_or_else(|| Self::err("short"))?;
        self.pos = end;
        Ok(s)
    }

    fn u32(&mut self) -> Result<u32, DbusError> {
        self.align(4);
        Ok(u32::from_le_bytes(
            self.take(4)?.try_into().expect("4 bytes"),
        ))
    }

    fn string(&mut self) -> Result<String, DbusError> {
        let n = self.u32()? as usize;
        let s = String::from_utf8_lossy(self.take(n)?).into_owned();
        self.take(1)?;
        Ok(s)
    }

    fn signature(&mut self) -> Result<String, DbusError> {
        let n = self.take(1)?[0] as usize;
        let s = String::from_utf8_lossy(self.take(n)?).into_owned();
        self.take(1)?;
        Ok(s)
    }
}

fn parse_header_fields(header: &[u8]) -> Result<HeaderFields, DbusError> {
    let mut d = Decoder {
        buf: header,
        pos: 16,
    };
    let mut f = HeaderFields::default();
    while d.pos < header.len() {
        d.align(8);
        if d.pos >= header.len() {
            break;
        }
        let code = d.take(1)?[0];
        let typ = d.signature()?;
        match typ.as_str() {
            "s" | "o" => {
                let s = d.string()?;
                if code == HEADER_ERROR_NAME {
                    f.error_name = Some(s);
                }
            }
            "g" => {
                let s = d.signature()?;
                if code == HEADER_SIGNATURE {
                    f.signature = s;
                }
            }
            "u" => {
                let n = d.u32()?;
                if code == HEADER_REPLY_SERIAL {
                    f.reply_serial = Some(n);
                }
            }
            other => {
                return Err(DbusError::Protocol(format!(
                    "unexpected header field type {other:?}"
                )))
            }
        }
    }
    Ok(f)
}

fn first_string(signature: &str, body: &[u8]) -> Option<String> {
    if !signature.starts_with('s') && !signature.starts_with('o') {
        return None;
    }
    Decoder { buf: body, pos: 0 }.string().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_marshal_with_alignment() {
        let v = Value::Array(
            "(sv)".into(),
            vec![Value::Struct(vec![
                Value::str("PIDs"),
                Value::Variant(Box::new(Value::Array("u".into(), vec![Value::U32(7)]))),
            ])],
        );
        assert_eq!(v.signature(), "a(sv)");
        let mut e = Encoder::default();
        e.value(&v);
        #[rustfmt::skip]
        let want: Vec<u8> = vec![
            24, 0, 0, 0,             // array length (after padding)
            0, 0, 0, 0,              // pad to the struct's 8
            4, 0, 0, 0, b'P', b'I', b'D', b's', 0, // "PIDs"
            2, b'a', b'u', 0,        // variant signature
            0, 0, 0,                 // pad to 4
            4, 0, 0, 0, 7, 0, 0, 0,  // au [7]
        ];
        assert_eq!(e.buf, want);
        let mut e = Encoder::default();
        e.value(&Value::Array("t".into(), vec![]));
        // The padding to the element's alignment is there even when empty.
        assert_eq!(e.buf, [0; 8]);
        e.value(&Value::U64(1));
        assert_eq!(e.buf.len(), 16);
    }

    #[test]
    fn a_method_call_round_trips_through_the_header_parser() {
        let msg = method_call(
            3,
            Some("org.freedesktop.systemd1"),
            "/org/freedesktop/systemd1",
            "org.freedesktop.systemd1.Manager",
            "StopUnit",
            &[Value::str("a.scope"), Value::str("replace")],
        );
        assert_eq!(&msg[..4], [b'l', METHOD_CALL, 0, 1]);
        let fields_len = u32::from_le_bytes(msg[12..16].try_into().unwrap()) as usize;
        let f = parse_header_fields(&msg[..16 + fields_len]).unwrap();
        assert_eq!(f.signature, "ss");
        let body_at = (16 + fields_len).div_ceil(8) * 8;
        let body_len = u32::from_le_bytes(msg[4..8].try_into().unwrap()) as usize;
        assert_eq!(msg.len(), body_at + body_len);
        assert_eq!(
            first_string(&f.signature, &msg[body_at..]).as_deref(),
            Some("a.scope")
        );
    }
}
