//! Registry authentication: the WWW-Authenticate challenge (Bearer or
//! Basic), anonymous and credentialed token requests, and credentials from
//! Docker's config.json and containers' auth.json.

use std::collections::BTreeMap;
use std::path::PathBuf;

use base64::Engine as _;
use serde::Deserialize;

/// A parsed `WWW-Authenticate` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Challenge {
    Bearer {
        realm: String,
        service: Option<String>,
        scope: Option<String>,
    },
    Basic,
}

impl Challenge {
    pub fn parse(header: &str) -> Option<Challenge> {
        let (scheme, rest) = header.trim().split_once(' ').unwrap_or((header.trim(), ""));
        if scheme.eq_ignore_ascii_case("basic") {
            return Some(Challenge::Basic);
        }
        if !scheme.eq_ignore_ascii_case("bearer") {
            return None;
        }
        let params = parse_params(rest);
        Some(Challenge::Bearer {
            realm: params.get("realm")?.clone(),
            service: params.get("service").cloned(),
            scope: params.get("scope").cloned(),
        })
    }
}

/// `key="value", key2=value2` (quoted values may hold commas).
fn parse_params(s: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut rest = s.trim();
    while !rest.is_empty() {
        let Some((key, after)) = rest.split_once('=') else {
            break;
        };
        let key = key
            .trim()
            .trim_start_matches(',')
            .trim()
            .to_ascii_lowercase();
        let after = after.trim_start();
        let (value, tail) = if let Some(q) = after.strip_prefix('"') {
            let mut v = String::new();
            let mut chars = q.char_indices();
            let mut end = q.len();
            while let Some((i, c)) = chars.next() {
                match c {
                    '\\' => {
                        if let Some((_, n)) = chars.next() {
                            v.push(n);
                        }
                    }
                    '"' => {
                        end = i + 1;
                        break;
                    }
                    c => v.push(c),
                }
            }
            (v, &q[end.min(q.len())..])
        } else {
            let end = after.find(',').unwrap_or(after.len());
            (after[..end].trim().to_string(), &after[end..])
        };
        out.insert(key, value);
        rest = tail.trim_start().trim_start_matches(',').trim_start();
    }
    out
}

/// A user name and password (or identity token) for a registry.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    pub password: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Credentials({:?}, ***)", self.username)
    }
}

impl Credentials {
    pub fn basic_header(&self) -> String {
        let raw = format!("{}:{}", self.username, self.password);
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(raw)
        )
    }
}

#[derive(Deserialize)]
struct AuthFile {
    #[serde(default)]
    auths: BTreeMap<String, AuthEntry>,
}

#[derive(Deserialize)]
struct AuthEntry {
    #[serde(default)]
    auth: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<String>,
}

/// The files credentials are read from, in the order Podman and Docker use.
pub fn auth_files() -> Vec<PathBuf> {
    let mut files = Vec::new();
    if let Some(f) = std::env::var_os("REGISTRY_AUTH_FILE") {
        files.push(PathBuf::from(f));
    }
    if let Some(x) = std::env::var_os("XDG_RUNTIME_DIR") {
        files.push(PathBuf::from(x).join("containers/auth.json"));
    }
    // SAFETY-free: getuid cannot fail.
    let uid = nix::unistd::getuid();
    files.push(PathBuf::from(format!("/run/containers/{uid}/auth.json")));
    if let Some(d) = std::env::var_os("DOCKER_CONFIG") {
        files.push(PathBuf::from(d).join("config.json"));
    }
    if let Some(h) = std::env::var_os("HOME") {
        files.push(PathBuf::from(h).join(".docker/config.json"));
    }
    files
}

/// The credentials for `registry` (and `repository`, for per-repository
/// entries) in the first of `files` that has them.
pub fn lookup(files: &[PathBuf], registry: &str, repository: &str) -> Option<Credentials> {
    let keys: Vec<String> = {
        let mut k = vec![format!("{registry}/{repository}"), registry.to_string()];
        if registry == crate::reference::DEFAULT_REGISTRY {
            k.push("https://index.docker.io/v1/".into());
            k.push("index.docker.io".into());
        }
        k.push(format!("https://{registry}"));
        k
    };
    for f in files {
        let Ok(data) = std::fs::read(f) else { continue };
        let Ok(file) = serde_json::from_slice::<AuthFile>(&data) else {
            continue;
        };
        for key in &keys {
            if let Some(c) = file.auths.get(key).and_then(decode) {
                return Some(c);
            }
        }
    }
    None
}

fn decode(e: &AuthEntry) -> Option<Credentials> {
    if let (Some(u), Some(p)) = (&e.username, &e.password) {
        return Some(Credentials {
            username: u.clone(),
            password: p.clone(),
        });
    }
    let raw = base64::engine::general_purpose::STANDARD
        .decode(e.auth.as_ref()?.trim())
        .ok()?;
    let (u, p) = std::str::from_utf8(&raw).ok()?.split_once(':')?;
    Some(Credentials {
        username: u.to_string(),
        password: p.to_string(),
    })
}

#[derive(Deserialize)]
pub(crate) struct TokenResponse {
    #[serde(default)]
    pub token: Option<String>,
    #[serde(default)]
    pub access_token: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_challenges() {
        let c = Challenge::parse(
            r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull""#,
        )
        .unwrap();
        assert_eq!(
            c,
            Challenge::Bearer {
                realm: "https://auth.docker.io/token".into(),
                service: Some("registry.docker.io".into()),
                scope: Some("repository:library/busybox:pull".into()),
            }
        );
        assert_eq!(
            Challenge::parse(r#"Basic realm="Registry Realm""#),
            Some(Challenge::Basic)
        );
        let c = Challenge::parse(r#"bearer realm=http://127.0.0.1:1/t, scope="a:b:pull,push""#)
            .unwrap();
        let Challenge::Bearer { realm, scope, .. } = c else {
            panic!()
        };
        assert_eq!(realm, "http://127.0.0.1:1/t");
        assert_eq!(scope.as_deref(), Some("a:b:pull,push"));
        assert_eq!(Challenge::parse("Negotiate abc"), None);
        assert_eq!(Challenge::parse("Bearer service=x"), None);
    }

    #[test]
    fn reads_auth_files() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("auth.json");
        let d = dir.path().join("config.json");
        std::fs::write(
            &a,
            r#"{"auths":{"127.0.0.1:5001":{"auth":"dXNlcjpwYXNz"}}}"#,
        )
        .unwrap();
        std::fs::write(
            &d,
            r#"{"auths":{"https://index.docker.io/v1/":{"auth":"aHViOnNlY3JldA=="},
               "reg.example/team/app":{"username":"t","password":"p"}}}"#,
        )
        .unwrap();
        let files = [a, d, dir.path().join("missing.json")];
        let c = lookup(&files, "127.0.0.1:5001", "busybox").unwrap();
        assert_eq!((c.username.as_str(), c.password.as_str()), ("user", "pass"));
        assert_eq!(c.basic_header(), "Basic dXNlcjpwYXNz");
        let c = lookup(&files, "docker.io", "library/busybox").unwrap();
        assert_eq!(c.username, "hub");
        assert_eq!(
            lookup(&files, "reg.example", "team/app").unwrap().username,
            "t"
        );
        assert!(lookup(&files, "reg.example", "other").is_none());
    }
}
