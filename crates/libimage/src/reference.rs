//! Image references, parsed and normalised the way Docker and Podman do
//! (distribution's `reference` grammar): `busybox` is
//! `docker.io/library/busybox:latest`, `host:port/repo@sha256:...` keeps its
//! registry, and a name that breaks the grammar is refused with the reason.

use std::fmt;

use crate::digest::Digest;
use crate::error::{Error, Result};

pub const DEFAULT_REGISTRY: &str = "docker.io";
pub const DEFAULT_TAG: &str = "latest";
const MAX_NAME: usize = 255;
const MAX_TAG: usize = 128;

/// A fully qualified reference: registry, repository and a tag, a digest or
/// both (a digest wins when pulling).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Reference {
    pub registry: String,
    pub repository: String,
    pub tag: Option<String>,
    pub digest: Option<Digest>,
}

impl Reference {
    /// Parses `s`, filling in the default registry, `library/` and `latest`.
    pub fn parse(s: &str) -> Result<Reference> {
        if s.is_empty() {
            return Err(Error::reference(s, "empty reference"));
        }
        let (rest, digest) = match s.split_once('@') {
            Some((rest, d)) => {
                let digest = Digest::parse(d)
                    .map_err(|_| Error::reference(s, format!("invalid digest {d:?}")))?;
                (rest, Some(digest))
            }
            None => (s, None),
        };
        // A tag follows the last ':' that comes after the last '/'.
        let slash = rest.rfind('/').map_or(0, |i| i + 1);
        let (name, tag) = match rest[slash..].rfind(':') {
            Some(i) => (&rest[..slash + i], Some(&rest[slash + i + 1..])),
            None => (rest, None),
        };
        if let Some(t) = tag {
            check_tag(s, t)?;
        }
        let (registry, path) = split_registry(name);
        check_registry(s, &registry)?;
        let repository = match (registry.as_str(), path.contains('/')) {
            (DEFAULT_REGISTRY, false) => format!("library/{path}"),
            _ => path.to_string(),
        };
        check_path(s, &repository)?;
        if registry.len() + 1 + repository.len() > MAX_NAME {
            return Err(Error::reference(
                s,
                format!("name is longer than {MAX_NAME} characters"),
            ));
        }
        let tag = match (tag, &digest) {
            (Some(t), _) => Some(t.to_string()),
            (None, None) => Some(DEFAULT_TAG.to_string()),
            (None, Some(_)) => None,
        };
        Ok(Reference {
            registry,
            repository,
            tag,
            digest,
        })
    }

    /// `registry/repository`, without tag or digest.
    pub fn name(&self) -> String {
        format!("{}/{}", self.registry, self.repository)
    }

    /// What to ask the registry for: the digest if there is one, else the tag.
    pub fn target(&self) -> String {
        match (&self.digest, &self.tag) {
            (Some(d), _) => d.to_string(),
            (None, Some(t)) => t.clone(),
            (None, None) => DEFAULT_TAG.to_string(),
        }
    }

    /// The host to send API requests to (Docker Hub's API lives elsewhere).
    pub fn api_host(&self) -> &str {
        match self.registry.as_str() {
            DEFAULT_REGISTRY => "registry-1.docker.io",
            r => r,
        }
    }

    /// The same repository at `digest`, for a manifest picked from an index.
    pub fn with_digest(&self, digest: Digest) -> Reference {
        Reference {
            digest: Some(digest),
            ..self.clone()
        }
    }

    /// The shortest name Docker would print: `busybox:latest` for Docker
    /// Hub's library images, the full name otherwise.
    pub fn familiar(&self) -> String {
        let name = match (
            self.registry.as_str(),
            self.repository.strip_prefix("library/"),
        ) {
            (DEFAULT_REGISTRY, Some(short)) if !short.contains('/') => short.to_string(),
            (DEFAULT_REGISTRY, _) => self.repository.clone(),
            _ => self.name(),
        };
        match &self.tag {
            Some(t) => format!("{name}:{t}"),
            None => name,
        }
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.name())?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

impl std::str::FromStr for Reference {
    type Err = Error;
    fn from_str(s: &str) -> Result<Reference> {
        Reference::parse(s)
    }
}

/// Splits off the registry: the first component is one if it has a '.' or
/// a ':', is `localhost`, or has upper-case letters (as distribution decides).
fn split_registry(name: &str) -> (String, &str) {
    match name.split_once('/') {
        Some((first, rest))
            if first.contains(['.', ':'])
                || first == "localhost"
                || first.chars().any(|c| c.is_ascii_uppercase()) =>
        {
            let registry = match first {
                "index.docker.io" | "registry-1.docker.io" => DEFAULT_REGISTRY,
                r => r,
            };
            (registry.to_string(), rest)
        }
        _ => (DEFAULT_REGISTRY.to_string(), name),
    }
}

fn check_tag(s: &str, tag: &str) -> Result<()> {
    let ok = !tag.is_empty()
        && tag.len() <= MAX_TAG
        && tag
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
        && tag
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    if ok {
        Ok(())
    } else {
        Err(Error::reference(
            s,
            format!("invalid tag {tag:?}: [A-Za-z0-9_][A-Za-z0-9_.-]{{0,127}} expected"),
        ))
    }
}

fn check_registry(s: &str, registry: &str) -> Result<()> {
    let (host, port) = match registry.rsplit_once(':') {
        Some((h, p)) if !h.ends_with(']') || registry.starts_with('[') => (h, Some(p)),
        _ => (registry, None),
    };
    let host_ok = if let Some(v6) = host.strip_prefix('[') {
        v6.strip_suffix(']')
            .is_some_and(|a| a.parse::<std::net::Ipv6Addr>().is_ok())
    } else {
        !host.is_empty()
            && host.split('.').all(|label| {
                !label.is_empty()
                    && !label.starts_with('-')
                    && !label.ends_with('-')
                    && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            })
    };
    let port_ok = port.is_none_or(|p| !p.is_empty() && p.parse::<u16>().is_ok());
    if host_ok && port_ok {
        Ok(())
    } else {
        Err(Error::reference(
            s,
            format!("invalid registry {registry:?}"),
        ))
    }
}

/// Path components: lower-case alphanumerics joined by `.`, `_`, `__` or
/// runs of `-`.
fn check_path(s: &str, path: &str) -> Result<()> {
    if path.chars().any(|c| c.is_ascii_uppercase()) {
        return Err(Error::reference(s, "repository name must be lowercase"));
    }
    for comp in path.split('/') {
        if !component_ok(comp) {
            return Err(Error::reference(
                s,
                format!("invalid repository path component {comp:?}"),
            ));
        }
    }
    Ok(())
}

fn component_ok(comp: &str) -> bool {
    let b = comp.as_bytes();
    let alnum = |c: u8| c.is_ascii_lowercase() || c.is_ascii_digit();
    if b.is_empty() || !alnum(b[0]) || !alnum(b[b.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        if alnum(b[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < b.len() && !alnum(b[i]) {
            i += 1;
        }
        let sep = &comp[start..i];
        let ok = matches!(sep, "." | "_" | "__") || sep.bytes().all(|c| c == b'-');
        if !ok {
            return false;
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn full(s: &str) -> String {
        Reference::parse(s).unwrap().to_string()
    }

    #[test]
    fn normalises_like_docker() {
        let d = "sha256:".to_string() + &"a".repeat(64);
        let cases = [
            ("busybox", "docker.io/library/busybox:latest"),
            ("busybox:1.36", "docker.io/library/busybox:1.36"),
            ("library/busybox", "docker.io/library/busybox:latest"),
            ("user/app", "docker.io/user/app:latest"),
            (
                "index.docker.io/busybox",
                "docker.io/library/busybox:latest",
            ),
            ("docker.io/busybox", "docker.io/library/busybox:latest"),
            ("quay.io/a/b/c:v1", "quay.io/a/b/c:v1"),
            ("localhost/app", "localhost/app:latest"),
            ("localhost:5000/app:x", "localhost:5000/app:x"),
            ("127.0.0.1:5000/busybox", "127.0.0.1:5000/busybox:latest"),
            ("[::1]:5000/busybox", "[::1]:5000/busybox:latest"),
            (
                "my-reg.example/a__b/c-d--e.f",
                "my-reg.example/a__b/c-d--e.f:latest",
            ),
        ];
        for (input, want) in cases {
            assert_eq!(full(input), want, "{input}");
        }
        let r = Reference::parse(&format!("127.0.0.1:5000/busybox@{d}")).unwrap();
        assert_eq!(r.tag, None);
        assert_eq!(r.target(), d);
        let r = Reference::parse(&format!("busybox:1@{d}")).unwrap();
        assert_eq!(r.tag.as_deref(), Some("1"));
        assert_eq!(r.target(), d, "a digest wins over a tag");
        assert_eq!(r.to_string(), format!("docker.io/library/busybox:1@{d}"));
    }

    #[test]
    fn familiar_names() {
        assert_eq!(
            Reference::parse("busybox").unwrap().familiar(),
            "busybox:latest"
        );
        assert_eq!(
            Reference::parse("user/app:1").unwrap().familiar(),
            "user/app:1"
        );
        assert_eq!(
            Reference::parse("127.0.0.1:5000/x").unwrap().familiar(),
            "127.0.0.1:5000/x:latest"
        );
        assert_eq!(
            Reference::parse("busybox").unwrap().api_host(),
            "registry-1.docker.io"
        );
    }

    #[test]
    fn refuses_bad_references_with_the_reason() {
        let cases = [
            ("", "empty"),
            ("Busybox", "lowercase"),
            ("busybox:", "invalid tag"),
            ("busybox:-x", "invalid tag"),
            ("busybox:a/b", "invalid registry"),
            ("busy box", "invalid repository path component"),
            ("a//b", "invalid repository path component"),
            ("a/b/", "invalid repository path component"),
            ("_a", "invalid repository path component"),
            ("a...b", "invalid repository path component"),
            ("busybox@sha256:abc", "invalid digest"),
            ("busybox@", "invalid digest"),
            ("host:port/a", "invalid registry"),
            ("-bad.io/a", "invalid registry"),
        ];
        for (input, reason) in cases {
            let err = Reference::parse(input).unwrap_err().to_string();
            assert!(err.contains(reason), "{input:?}: {err}");
        }
        let long = "a".repeat(300);
        assert!(Reference::parse(&long).is_err());
        let tag = format!("busybox:{}", "t".repeat(129));
        assert!(Reference::parse(&tag).is_err());
    }
}
