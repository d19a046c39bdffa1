//! A client of the OCI distribution API: manifests and blobs, with bearer
//! and basic auth, per-registry TLS settings, retries with backoff, and
//! blob downloads that resume with an HTTP Range after a broken connection.

pub mod auth;
pub mod config;

use std::collections::HashMap;
use std::io::{self, Read};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use auth::{Challenge, Credentials, TokenResponse};
use config::{RegistriesConfig, Transport};

use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::manifest::{Descriptor, ACCEPT};
use crate::reference::Reference;

/// Manifests and configs larger than this are refused.
const MAX_MANIFEST: u64 = 8 << 20;

#[derive(Debug, Clone)]
pub struct ClientOptions {
    pub registries: RegistriesConfig,
    pub certs_dirs: Vec<PathBuf>,
    pub auth_files: Vec<PathBuf>,
    /// Credentials that win over the auth files.
    pub credentials: Option<Credentials>,
    /// `Some(false)`: plain HTTP and unverified TLS for every registry.
    pub tls_verify: Option<bool>,
    /// Attempts per request (and resumes per blob) after the first.
    pub retries: u32,
    pub backoff: Duration,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            registries: RegistriesConfig::default(),
            certs_dirs: config::CERTS_DIRS.iter().map(PathBuf::from).collect(),
            auth_files: auth::auth_files(),
            credentials: None,
            tls_verify: None,
            retries: 4,
            backoff: Duration::from_millis(200),
        }
    }
}

impl ClientOptions {
    /// The defaults plus the registries file at `path` (if it exists).
    pub fn from_config_file(path: &std::path::Path) -> Result<ClientOptions> {
        Ok(ClientOptions {
            registries: RegistriesConfig::load(path)?,
            ..ClientOptions::default()
        })
    }
}

/// A registry client; cheap to clone and shared by download threads.
#[derive(Clone)]
pub struct Client(Arc<Inner>);

struct Inner {
    opts: ClientOptions,
    hosts: Mutex<HashMap<String, Arc<Host>>>,
}

/// One registry: its agent, the scheme that worked, and tokens per repository.
struct Host {
    name: String,
    agent: ureq::Agent,
    insecure: bool,
    scheme: Mutex<&'static str>,
    auth: Mutex<HashMap<String, String>>,
}

/// A GET's answer: the body, its type and the digest header.
pub struct Fetched {
    pub data: Vec<u8>,
    pub content_type: Option<String>,
    pub digest: Option<String>,
}

impl Client {
    pub fn new(opts: ClientOptions) -> Client {
        Client(Arc::new(Inner {
            opts,
            hosts: Mutex::new(HashMap::new()),
        }))
    }

    fn host(&self, name: &str) -> Result<Arc<Host>> {
        let mut hosts = self.0.hosts.lock().expect("hosts lock");
        if let Some(h) = hosts.get(name) {
            return Ok(h.clone());
        }
        let mut t = Transport::for_host(&self.0.opts.registries, &self.0.opts.certs_dirs, name);
        if self.0.opts.tls_verify == Some(false) {
            t.insecure = true;
            t.extra_cas.clear();
        }
        let agent = ureq::AgentBuilder::new()
            .tls_config(t.tls_config(name)?)
            .timeout_connect(Duration::from_secs(15))
            .timeout_read(Duration::from_secs(60))
            .redirects(8)
            .user_agent(concat!("hull/", env!("CARGO_PKG_VERSION")))
            .build();
        let host = Arc::new(Host {
            name: name.to_string(),
            agent,
            insecure: t.insecure,
            scheme: Mutex::new("https"),
            auth: Mutex::new(HashMap::new()),
        });
        hosts.insert(name.to_string(), host.clone());
        Ok(host)
    }

    fn err(host: &str, op: &str, reason: impl ToString) -> Error {
        Error::Registry {
            registry: host.to_string(),
            op: op.to_string(),
            reason: reason.to_string(),
        }
    }

    /// GET `/v2/<repo>/<path>`: authenticates on a 401 challenge, falls back
    /// to plain HTTP for an insecure registry, and retries transport errors
    /// and 5xx/429 answers with exponential backoff.
    fn get(
        &self,
        r: &Reference,
        path: &str,
        accept: Option<&str>,
        range: u64,
    ) -> Result<ureq::Response> {
        let host = self.host(r.api_host())?;
        let op = format!("GET /v2/{}/{path}", r.repository);
        let mut authed = false;
        let mut attempt = 0;
        loop {
            let scheme = *host.scheme.lock().expect("scheme lock");
            let url = format!("{scheme}://{}/v2/{}/{path}", host.name, r.repository);
            let mut req = host.agent.get(&url);
            if let Some(a) = accept {
                req = req.set("Accept", a);
            }
            if range > 0 {
                req = req.set("Range", &format!("bytes={range}-"));
            }
            if let Some(h) = host.auth.lock().expect("auth lock").get(&r.repository) {
                req = req.set("Authorization", h);
            }
            match req.call() {
                Ok(resp) => return Ok(resp),
                Err(ureq::Error::Status(401, resp)) if !authed => {
                    authed = true;
                    self.authenticate(&host, r, resp.header("www-authenticate"))?;
                }
                Err(ureq::Error::Status(401, resp)) => {
                    return Err(Error::Unauthorized {
                        registry: r.registry.clone(),
                        repo: r.repository.clone(),
                        reason: status_text(resp),
                    })
                }
                Err(ureq::Error::Status(code, resp)) if code >= 500 || code == 429 => {
                    if attempt >= self.0.opts.retries {
                        return Err(Self::err(
                            &r.registry,
                            &op,
                            format!("{code} {}", status_text(resp)),
                        ));
                    }
                    attempt += 1;
                    self.sleep(attempt);
                }
                Err(ureq::Error::Status(404, _)) if path.starts_with("manifests/") => {
                    return Err(Error::ManifestUnknown {
                        reference: r.to_string(),
                    })
                }
                Err(ureq::Error::Status(code, resp)) => {
                    return Err(Self::err(
                        &r.registry,
                        &op,
                        format!("{code} {}", status_text(resp)),
                    ))
                }
                Err(ureq::Error::Transport(t)) => {
                    let mut scheme = host.scheme.lock().expect("scheme lock");
                    if host.insecure && *scheme == "https" {
                        *scheme = "http";
                        continue;
                    }
                    drop(scheme);
                    if attempt >= self.0.opts.retries {
                        return Err(Self::err(&r.registry, &op, t));
                    }
                    attempt += 1;
                    self.sleep(attempt);
                }
            }
        }
    }

    fn sleep(&self, attempt: u32) {
        std::thread::sleep(self.0.opts.backoff * 2u32.saturating_pow(attempt - 1));
    }

    fn credentials(&self, r: &Reference) -> Option<Credentials> {
        self.0
            .opts
            .credentials
            .clone()
            .or_else(|| auth::lookup(&self.0.opts.auth_files, &r.registry, &r.repository))
    }

    /// Answers a 401: a bearer token from the realm (with credentials if
    /// there are any), or basic credentials.
    fn authenticate(&self, host: &Host, r: &Reference, header: Option<&str>) -> Result<()> {
        let unauthorized = |reason: String| Error::Unauthorized {
            registry: r.registry.clone(),
            repo: r.repository.clone(),
            reason,
        };
        let challenge = header
            .and_then(Challenge::parse)
            .ok_or_else(|| unauthorized(format!("unusable challenge {header:?}")))?;
        let creds = self.credentials(r);
        let value = match challenge {
            Challenge::Basic => creds
                .ok_or_else(|| {
                    unauthorized("no credentials (auth.json, ~/.docker/config.json)".into())
                })?
                .basic_header(),
            Challenge::Bearer { realm, service, .. } => {
                let scope = format!("repository:{}:pull", r.repository);
                let mut req = host.agent.get(&realm).query("scope", &scope);
                if let Some(s) = &service {
                    req = req.query("service", s);
                }
                if let Some(c) = &creds {
                    req = req.set("Authorization", &c.basic_header());
                }
                let resp = req
                    .call()
                    .map_err(|e| unauthorized(format!("token from {realm}: {e}")))?;
                let text = resp
                    .into_string()
                    .map_err(|e| unauthorized(format!("token from {realm}: {e}")))?;
                let body: TokenResponse = serde_json::from_str(&text)
                    .map_err(|e| unauthorized(format!("token from {realm}: {e}")))?;
                let token = body.token.or(body.access_token).ok_or_else(|| {
                    unauthorized(format!("token from {realm}: no token in the answer"))
                })?;
                format!("Bearer {token}")
            }
        };
        host.auth
            .lock()
            .expect("auth lock")
            .insert(r.repository.clone(), value);
        Ok(())
    }

    /// The manifest (or index) for `target` (a tag or digest).
    pub fn manifest(&self, r: &Reference, target: &str) -> Result<Fetched> {
        let resp = self.get(r, &format!("manifests/{target}"), Some(ACCEPT), 0)?;
        let content_type = resp.header("content-type").map(str::to_string);
        let digest = resp.header("docker-content-digest").map(str::to_string);
        let data = read_limited(resp, MAX_MANIFEST)
            .map_err(|e| Self::err(&r.registry, "read manifest", e))?;
        Ok(Fetched {
            data,
            content_type,
            digest,
        })
    }

    /// A small blob (an image config), read whole and verified.
    pub fn blob_bytes(&self, r: &Reference, d: &Descriptor) -> Result<Vec<u8>> {
        if d.size > MAX_MANIFEST {
            return Err(Self::err(
                &r.registry,
                "config",
                format!("{} is {} bytes", d.digest, d.size),
            ));
        }
        let mut data = Vec::with_capacity(d.size as usize);
        self.blob(r, d)?
            .read_to_end(&mut data)
            .map_err(|e| Self::err(&r.registry, &format!("blob {}", d.digest), e))?;
        d.digest.verify("blob", &data)?;
        Ok(data)
    }

    /// A blob as a stream of exactly `d.size` bytes, resumed where it broke
    /// off if the connection fails. The caller verifies the digest.
    pub fn blob(&self, r: &Reference, d: &Descriptor) -> Result<BlobReader> {
        let resp = self.get(r, &format!("blobs/{}", d.digest), None, 0)?;
        Ok(BlobReader {
            client: self.clone(),
            reference: r.clone(),
            digest: d.digest.clone(),
            size: d.size,
            offset: 0,
            body: Some(resp.into_reader()),
            resumes: 0,
        })
    }
}

fn status_text(resp: ureq::Response) -> String {
    let status = resp.status_text().to_string();
    let body = resp.into_string().unwrap_or_default();
    // The distribution API's {"errors":[{"code","message"}]}.
    let msg = serde_json::from_str::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| v["errors"][0]["message"].as_str().map(str::to_string));
    msg.unwrap_or(status)
}

fn read_limited(resp: ureq::Response, limit: u64) -> io::Result<Vec<u8>> {
    let mut data = Vec::new();
    resp.into_reader().take(limit + 1).read_to_end(&mut data)?;
    if data.len() as u64 > limit {
        return Err(io::Error::other(format!("larger than {limit} bytes")));
    }
    Ok(data)
}

/// The body of a blob; a broken connection is resumed with a Range request.
pub struct BlobReader {
    client: Client,
    reference: Reference,
    digest: Digest,
    size: u64,
    offset: u64,
    body: Option<Box<dyn Read + Send + Sync>>,
    resumes: u32,
}

impl BlobReader {
    /// How many times the download was resumed.
    pub fn resumes(&self) -> u32 {
        self.resumes
    }

    fn reconnect(&mut self) -> io::Result<()> {
        let path = format!("blobs/{}", self.digest);
        let resp = self
            .client
            .get(&self.reference, &path, None, self.offset)
            .map_err(io::Error::other)?;
        let partial = resp.status() == 206;
        let mut body = resp.into_reader();
        if !partial && self.offset > 0 {
            // The server ignored the Range and sends the whole blob again.
            let skipped = io::copy(&mut (&mut body).take(self.offset), &mut io::sink())?;
            if skipped != self.offset {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "blob shorter on retry",
                ));
            }
        }
        self.body = Some(body);
        Ok(())
    }

    fn broken(&mut self, e: io::Error) -> io::Result<()> {
        if self.resumes >= self.client.0.opts.retries {
            return Err(io::Error::new(
                e.kind(),
                format!("blob {}: {e} (after {} resumes)", self.digest, self.resumes),
            ));
        }
        self.resumes += 1;
        tracing::debug!(digest = %self.digest, offset = self.offset, "resuming blob download: {e}");
        self.body = None;
        self.client.sleep(self.resumes);
        Ok(())
    }
}

impl Read for BlobReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            if self.offset == self.size {
                return Ok(0);
            }
            if self.body.is_none() {
                if let Err(e) = self.reconnect() {
                    self.broken(e)?;
                    continue;
                }
            }
            let want = buf.len().min((self.size - self.offset) as usize);
            let body = self.body.as_mut().expect("connected");
            match body.read(&mut buf[..want]) {
                Ok(0) => {
                    let e = io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        format!("connection closed at byte {} of {}", self.offset, self.size),
                    );
                    self.broken(e)?;
                }
                Ok(n) => {
                    self.offset += n as u64;
                    return Ok(n);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => self.broken(e)?,
            }
        }
    }
}
