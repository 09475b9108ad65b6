//! Bearer-token authentication for the API.
//!
//! There are two tokens: the full one may do anything, the read-only one may only read
//! (`GET`: lists, records, logs and the event stream). Tokens are compared in constant time
//! and never logged. `GET /v1/health` needs no token, so load balancers can probe it.

use std::fs::OpenOptions;
use std::io::Write;
use std::net::SocketAddr;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, bail};
use axum::extract::{Request, State};
use axum::http::{Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use subtle::ConstantTimeEq;

use super::error::ApiError;
use super::server::AppState;

/// The shortest token accepted, in characters.
pub const MIN_TOKEN_CHARS: usize = 16;
/// File in the data directory holding a generated full token.
pub const TOKEN_FILE: &str = "api-token";
/// File in the data directory holding a generated read-only token.
pub const READ_TOKEN_FILE: &str = "api-token-read";

/// The access a token grants.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Access {
    Read,
    Full,
}

/// The tokens the server accepts.
pub struct Tokens {
    full: Vec<u8>,
    read: Option<Vec<u8>>,
}

impl Tokens {
    /// Checks both tokens; the error names the rule broken, never the token.
    pub fn new(full: String, read: Option<String>) -> anyhow::Result<Tokens> {
        check("API token", &full)?;
        if let Some(read) = &read {
            check("read-only API token", read)?;
            if *read == full {
                bail!("the read-only API token must differ from the full one");
            }
        }
        Ok(Tokens {
            full: full.into_bytes(),
            read: read.map(String::into_bytes),
        })
    }

    /// Returns the access `presented` grants. Both tokens are always compared, in constant time.
    pub fn grant(&self, presented: &[u8]) -> Option<Access> {
        let full: bool = self.full.ct_eq(presented).into();
        let read: bool = self
            .read
            .as_ref()
            .map(|read| read.ct_eq(presented).into())
            .unwrap_or(false);
        match (full, read) {
            (true, _) => Some(Access::Full),
            (false, true) => Some(Access::Read),
            (false, false) => None,
        }
    }
}

fn check(what: &str, token: &str) -> anyhow::Result<()> {
    let chars = token.chars().count();
    if chars < MIN_TOKEN_CHARS {
        bail!("the {what} is {chars} characters long; use at least {MIN_TOKEN_CHARS}");
    }
    if let Some(bad) = token.chars().find(|c| !c.is_ascii_graphic()) {
        bail!("the {what} contains {bad:?}; use printable ASCII without spaces");
    }
    Ok(())
}

/// Returns 32 random bytes as 64 hexadecimal characters.
pub fn generate() -> anyhow::Result<String> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| anyhow::anyhow!("cannot read random bytes: {e}"))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// The authentication the command line requested.
#[derive(Debug, Clone, Default)]
pub struct AuthRequest {
    pub token: Option<String>,
    pub read_token: Option<String>,
    pub no_auth: bool,
}

/// The tokens to serve with, and a line telling the operator where generated ones are.
pub struct AuthSetup {
    pub tokens: Option<Arc<Tokens>>,
    pub notice: String,
}

/// Decides the tokens: given ones; none with `--no-auth` on loopback only; generated ones
/// (kept in the data directory, readable by the owner alone) on loopback; and on any other
/// address a given token is required.
pub fn resolve(
    request: AuthRequest,
    listen: SocketAddr,
    data_dir: &Path,
) -> anyhow::Result<AuthSetup> {
    let loopback = listen.ip().is_loopback();
    if request.no_auth {
        if !loopback {
            bail!("--no-auth is only allowed on a loopback address, not on {listen}");
        }
        if request.token.is_some() || request.read_token.is_some() {
            bail!("--no-auth cannot be combined with --token or --read-token");
        }
        return Ok(AuthSetup {
            tokens: None,
            notice: "API authentication is off (--no-auth)".into(),
        });
    }
    if let Some(full) = request.token {
        let tokens = Tokens::new(full, request.read_token)?;
        return Ok(AuthSetup {
            tokens: Some(Arc::new(tokens)),
            notice: "API tokens as given".into(),
        });
    }
    if !loopback {
        bail!(
            "listening on {listen}, which is not a loopback address, requires an API token: \
             pass --token or set TORPOR_TOKEN (and optionally --read-token or TORPOR_READ_TOKEN)"
        );
    }
    if request.read_token.is_some() {
        bail!("--read-token needs --token as well");
    }
    let full_path = data_dir.join(TOKEN_FILE);
    let read_path = data_dir.join(READ_TOKEN_FILE);
    let full = load_or_create(&full_path)?;
    let read = load_or_create(&read_path)?;
    let tokens = Tokens::new(full, Some(read))
        .with_context(|| format!("invalid token in {}", full_path.display()))?;
    Ok(AuthSetup {
        tokens: Some(Arc::new(tokens)),
        notice: format!(
            "API token in {} (read-only token in {})",
            full_path.display(),
            read_path.display()
        ),
    })
}

/// Reads a token file, or creates it with a new token, readable by the owner alone.
fn load_or_create(path: &PathBuf) -> anyhow::Result<String> {
    match std::fs::read_to_string(path) {
        Ok(text) => return Ok(text.trim().to_owned()),
        Err(err) if err.kind() != std::io::ErrorKind::NotFound => {
            return Err(err).with_context(|| format!("cannot read {}", path.display()));
        }
        Err(_) => {}
    }
    let token = generate()?;
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    writeln!(file, "{token}")?;
    Ok(token)
}

/// Returns the access a request needs: reading for `GET` and `HEAD`, full for the rest.
fn needed(method: &Method) -> Access {
    if method == Method::GET || method == Method::HEAD {
        Access::Read
    } else {
        Access::Full
    }
}

fn bearer(request: &Request) -> Option<&[u8]> {
    let value = request.headers().get(header::AUTHORIZATION)?.as_bytes();
    let scheme = value.get(..7)?;
    scheme
        .eq_ignore_ascii_case(b"bearer ")
        .then(|| value[7..].trim_ascii())
}

fn unauthorized(message: &str) -> Response {
    let mut response =
        ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", message).into_response();
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        header::HeaderValue::from_static("Bearer"),
    );
    response
}

/// Rejects a request whose declared body is over `limits.max_request_bytes` before reading
/// any of it.
pub async fn check_length(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let limit = state.runtime.config().limits.max_request_bytes;
    if super::params::declared_length(request.headers()).is_some_and(|len| len > limit as u64) {
        return super::params::body_too_large(request.headers(), limit).into_response();
    }
    next.run(request).await
}

/// Rejects requests without the access their method needs, before they reach a route.
pub async fn require(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let Some(tokens) = &state.tokens else {
        return next.run(request).await;
    };
    if request.uri().path() == "/v1/health" {
        return next.run(request).await;
    }
    let granted = match bearer(&request) {
        None => {
            return unauthorized(
                "missing API token: send the header \"Authorization: Bearer TOKEN\"",
            );
        }
        Some(presented) => tokens.grant(presented),
    };
    match granted {
        None => unauthorized("invalid API token"),
        Some(access) if access < needed(request.method()) => ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "the read-only token can list and read objects but not call or change them; use the full token",
        )
        .into_response(),
        Some(_) => next.run(request).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_grant_by_kind() {
        let tokens = Tokens::new("f".repeat(20), Some("r".repeat(20))).unwrap();
        assert_eq!(tokens.grant("f".repeat(20).as_bytes()), Some(Access::Full));
        assert_eq!(tokens.grant("r".repeat(20).as_bytes()), Some(Access::Read));
        assert_eq!(tokens.grant(b"ffff"), None);
        assert_eq!(tokens.grant(b""), None);
    }

    #[test]
    fn weak_tokens_are_rejected_without_echoing_them() {
        let err = Tokens::new("short".into(), None).err().unwrap().to_string();
        assert!(
            err.contains("5 characters") && !err.contains("short"),
            "{err}"
        );
        let err = Tokens::new("with space in it 123".into(), None)
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("' '"), "{err}");
        let same = "x".repeat(20);
        assert!(Tokens::new(same.clone(), Some(same)).is_err());
    }

    #[test]
    fn generated_tokens_persist_and_are_private() {
        let dir = tempfile::tempdir().unwrap();
        let loopback: SocketAddr = "127.0.0.1:7070".parse().unwrap();
        let first = resolve(AuthRequest::default(), loopback, dir.path()).unwrap();
        assert!(first.notice.contains(TOKEN_FILE));
        let token = std::fs::read_to_string(dir.path().join(TOKEN_FILE)).unwrap();
        assert_eq!(token.trim().len(), 64);
        let mode = std::fs::metadata(dir.path().join(TOKEN_FILE))
            .unwrap()
            .permissions();
        assert_eq!(
            std::os::unix::fs::PermissionsExt::mode(&mode) & 0o777,
            0o600
        );
        resolve(AuthRequest::default(), loopback, dir.path()).unwrap();
        assert_eq!(
            std::fs::read_to_string(dir.path().join(TOKEN_FILE)).unwrap(),
            token,
            "kept across restarts"
        );
    }

    #[test]
    fn public_addresses_need_a_given_token() {
        let dir = tempfile::tempdir().unwrap();
        let public: SocketAddr = "0.0.0.0:7070".parse().unwrap();
        let err = resolve(AuthRequest::default(), public, dir.path())
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("requires an API token"), "{err}");
        let no_auth = AuthRequest {
            no_auth: true,
            ..AuthRequest::default()
        };
        let err = resolve(no_auth, public, dir.path())
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("only allowed on a loopback address"), "{err}");
        let given = AuthRequest {
            token: Some("t".repeat(32)),
            ..AuthRequest::default()
        };
        assert!(resolve(given, public, dir.path()).unwrap().tokens.is_some());
        assert!(
            !dir.path().join(TOKEN_FILE).exists(),
            "no token file when one is given"
        );
    }
}
