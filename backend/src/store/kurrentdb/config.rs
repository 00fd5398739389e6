//! The store URL and the names of Ducha's streams in KurrentDB.
//!
//! A KurrentDB store URL is the client's own connection string (`kurrentdb://`, `esdb://`,
//! `esdb+discover://`, … with `tls`, `tlsCAFile`, `nodePreference`, …) plus Ducha's parameters,
//! which are removed before the client sees the URL:
//! - `ducha_namespace` (default `ducha`): the prefix of every stream Ducha writes, so that several
//!   deployments (or test runs) can share one cluster;
//! - `ducha_max_append_bytes` (default 1 MiB, the server's default `MaxAppendSize`): the writer puts
//!   at most this many bytes of events into one append.

use crate::store::StoreError;
use kurrentdb::ClientSettings;

/// The URL schemes the client accepts (`+discover`: find the cluster's nodes by DNS).
pub const SCHEMES: [&str; 8] =
    ["kurrentdb", "kurrentdb+discover", "kurrent", "kurrent+discover", "kdb", "kdb+discover", "esdb", "esdb+discover"];

/// The connection-string parameters the client knows (lower case; it matches them case-insensitively
/// and only warns about others, so a typo would silently change nothing: refused here instead).
const CLIENT_PARAMETERS: [&str; 13] = [
    "maxdiscoverattempts",
    "discoveryinterval",
    "gossiptimeout",
    "tls",
    "tlsverifycert",
    "nodepreference",
    "keepaliveinterval",
    "keepalivetimeout",
    "defaultdeadline",
    "connectionname",
    "usercertfile",
    "userkeyfile",
    "tlscafile",
];

pub const DEFAULT_NAMESPACE: &str = "ducha";
/// The server's default `MaxAppendSize`.
pub const DEFAULT_MAX_APPEND_BYTES: usize = 1 << 20;

/// Whether `url` names a KurrentDB store.
pub fn is_kurrentdb_url(url: &str) -> bool {
    url.split_once("://").is_some_and(|(scheme, _)| SCHEMES.contains(&scheme.to_ascii_lowercase().as_str()))
}

/// The names of Ducha's streams. The namespace is `[a-z0-9_]`, so `{namespace}-` is an unambiguous
/// prefix: no stream of one namespace can be a stream of another.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Names {
    namespace: String,
    log: String,
}

impl Names {
    pub fn new(namespace: &str) -> Result<Names, String> {
        let ok = !namespace.is_empty()
            && namespace.len() <= 64
            && namespace.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
        if !ok {
            return Err(format!("ducha_namespace 须为 1 至 64 个小写字母、数字或下划线：{namespace:?}"));
        }
        Ok(Names { namespace: namespace.to_owned(), log: format!("{namespace}-log") })
    }

    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// The one stream holding every event: revision N − 1 is global position N.
    pub fn log(&self) -> &str {
        &self.log
    }

    /// The stream of a checkpoint's pointers (the last one is current).
    pub fn checkpoint(&self, name: &str) -> String {
        format!("{}-checkpoint-{name}", self.namespace)
    }

    /// A stream holding one saved checkpoint's bytes.
    pub fn blob(&self, id: uuid::Uuid) -> String {
        format!("{}-blob-{}", self.namespace, id.simple())
    }
}

/// A parsed store URL.
#[derive(Clone)]
pub struct KurrentConfig {
    /// The client's settings. They hold the password, and their `Debug` prints it: never log them.
    pub settings: ClientSettings,
    pub names: Names,
    pub max_append_bytes: usize,
    /// The URL without its password, for messages.
    pub shown: String,
}

impl std::fmt::Debug for KurrentConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KurrentConfig").field("url", &self.shown).finish_non_exhaustive()
    }
}

/// Parses a store URL: Ducha's parameters off, the rest checked and handed to the client's parser.
pub fn parse_url(url: &str) -> Result<KurrentConfig, StoreError> {
    let url = url.trim();
    let shown = redact(url);
    let bad = |msg: String| StoreError::Io(format!("KurrentDB 存储地址无效 / invalid KurrentDB URL {shown}: {msg}"));
    if !is_kurrentdb_url(url) {
        return Err(bad(format!("the scheme must be one of {}", SCHEMES.join(", "))));
    }
    let (base, query) = url.split_once('?').unwrap_or((url, ""));
    let mut namespace = DEFAULT_NAMESPACE.to_owned();
    let mut max_append_bytes = DEFAULT_MAX_APPEND_BYTES;
    let mut kept = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        match k {
            "ducha_namespace" => namespace = v.to_owned(),
            "ducha_max_append_bytes" => {
                max_append_bytes = v
                    .parse::<usize>()
                    .ok()
                    .filter(|n| (64 << 10..=64 << 20).contains(n))
                    .ok_or_else(|| bad(format!("ducha_max_append_bytes 须在 65536 与 67108864 之间：{v:?}")))?;
            }
            k if k.starts_with("ducha_") => return Err(bad(format!("未知参数 / unknown parameter {k}"))),
            k if CLIENT_PARAMETERS.contains(&k.to_ascii_lowercase().as_str()) => kept.push(pair),
            k => return Err(bad(format!("KurrentDB 客户端不认识参数 / the client has no parameter {k:?}"))),
        }
    }
    let names = Names::new(&namespace).map_err(bad)?;
    let client_url = if kept.is_empty() { base.to_owned() } else { format!("{base}?{}", kept.join("&")) };
    let settings: ClientSettings = client_url.parse().map_err(|e: kurrentdb::ClientSettingsParseError| {
        // The client's message may quote the whole URL, password included.
        let reason = match e.error() {
            Some(url_error) => url_error.to_string(),
            None if e.message().contains(url) || e.message().contains(&client_url) => "malformed URL".to_owned(),
            None => e.message().to_owned(),
        };
        bad(reason)
    })?;
    if settings.hosts().is_empty() {
        return Err(bad("name a host (kurrentdb://host:2113)".into()));
    }
    Ok(KurrentConfig { settings, names, max_append_bytes, shown })
}

/// The URL without its password: `esdb://admin:changeit@a:2113,b:2113?tls=false` →
/// `esdb://admin:***@a:2113,b:2113?tls=false`. The user information ends at the last `@` before the
/// query, so a password holding `/` or `@` does not leak either.
pub fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else { return url.to_owned() };
    let (before_query, query) = match rest.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (rest, None),
    };
    let shown = match before_query.rsplit_once('@') {
        Some((userinfo, hosts)) => match userinfo.split_once(':') {
            Some((user, _)) => format!("{scheme}://{user}:***@{hosts}"),
            None => format!("{scheme}://{userinfo}@{hosts}"),
        },
        None => format!("{scheme}://{before_query}"),
    };
    match query {
        Some(q) => format!("{shown}?{q}"),
        None => shown,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_clients_url_forms_are_recognised() {
        for url in [
            "kurrentdb://localhost:2113",
            "esdb://a:2113,b:2113,c:2113?tls=false",
            "esdb+discover://cluster.example:2113",
            "KurrentDB+Discover://x",
        ] {
            assert!(is_kurrentdb_url(url), "{url}");
        }
        for url in ["postgres://u@h/d", "sqlite:./data", "esdb:/x", "http://h:2113", "kurrentdb"] {
            assert!(!is_kurrentdb_url(url), "{url}");
        }
    }

    #[test]
    fn our_parameters_are_taken_off_and_the_rest_reaches_the_client() {
        let c = parse_url(
            "esdb://admin:changeit@db1:2113,db2:2114?tls=false&ducha_namespace=jd_pilot&nodePreference=leader\
             &ducha_max_append_bytes=16777216",
        )
        .unwrap();
        assert_eq!(c.names.log(), "jd_pilot-log");
        assert_eq!(c.max_append_bytes, 16 << 20);
        assert!(!c.settings.is_secure_mode_enabled());
        assert_eq!(c.settings.node_preference(), kurrentdb::NodePreference::Leader);
        let hosts: Vec<(String, u32)> = c.settings.hosts().iter().map(|e| (e.host.clone(), e.port)).collect();
        assert_eq!(hosts, vec![("db1".to_owned(), 2113), ("db2".to_owned(), 2114)]);
        assert_eq!(
            c.shown,
            "esdb://admin:***@db1:2113,db2:2114?tls=false&ducha_namespace=jd_pilot&nodePreference=leader&ducha_max_append_bytes=16777216"
        );
        assert!(!format!("{c:?}").contains("changeit"));

        let d = parse_url("kurrentdb://localhost").unwrap();
        assert_eq!(d.names.namespace(), DEFAULT_NAMESPACE);
        assert_eq!(d.max_append_bytes, DEFAULT_MAX_APPEND_BYTES);
        assert!(d.settings.is_secure_mode_enabled(), "the client's default is TLS");
        assert!(parse_url("esdb+discover://cluster.example:2113").unwrap().settings.is_dns_discovery_enabled());
    }

    #[test]
    fn mistakes_are_refused_with_the_reason_and_without_the_password() {
        for (url, says) in [
            ("kurrentdb://u:secret@h?ducha_typo=1", "ducha_typo"),
            ("kurrentdb://u:secret@h?tsl=false", "tsl"),
            ("kurrentdb://u:secret@h?ducha_namespace=Big-Name", "ducha_namespace"),
            ("kurrentdb://u:secret@h?ducha_namespace=", "ducha_namespace"),
            ("kurrentdb://u:secret@h?ducha_max_append_bytes=10", "ducha_max_append_bytes"),
            ("kurrentdb://u:secret@h?nodePreference=nearest", "node preference"),
            ("kurrentdb://u:secret@h/somepath", "path"),
            ("kurrentdb://u:secret@h:notaport", "port"),
            ("postgres://u:secret@h/db", "scheme"),
        ] {
            let e = parse_url(url).unwrap_err().to_string();
            assert!(e.contains(says), "{url}: {e}");
            assert!(!e.contains("secret"), "{url}: {e}");
        }
    }

    #[test]
    fn passwords_never_show() {
        assert_eq!(redact("kurrentdb://admin:changeit@h:2113"), "kurrentdb://admin:***@h:2113");
        assert_eq!(redact("esdb://admin@h"), "esdb://admin@h");
        assert_eq!(redact("esdb://h1,h2?tls=false"), "esdb://h1,h2?tls=false");
        assert_eq!(redact("esdb://u:pa/ss@w@h:1?connectionName=a@b"), "esdb://u:***@h:1?connectionName=a@b");
        assert_eq!(redact("not a url"), "not a url");
    }

    #[test]
    fn namespaces_cannot_collide() {
        assert!(Names::new("ducha").is_ok());
        assert!(Names::new("pilot_2026").is_ok());
        for bad in ["", "a-log", "UPPER", "with space", "点", "$all", &"x".repeat(65)] {
            assert!(Names::new(bad).is_err(), "{bad:?}");
        }
        let n = Names::new("a").unwrap();
        assert_eq!(n.log(), "a-log");
        assert_eq!(n.checkpoint("read_model.v1"), "a-checkpoint-read_model.v1");
        let id = uuid::Uuid::nil();
        assert_eq!(n.blob(id), "a-blob-00000000000000000000000000000000");
        // Without `-` in a namespace, one namespace's streams never start with another's prefix.
        let other = Names::new("a_log").unwrap();
        assert!(!other.log().starts_with("a-") && !n.log().starts_with("a_log-"));
    }
}
