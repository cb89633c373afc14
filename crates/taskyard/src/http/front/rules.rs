//! Route rules: `[route_rules]` in `taskyard.toml`, keyed by path patterns (`/blog/**`),
//! applied by the app's front layer before middleware and routes.
//!
//! ```toml
//! [route_rules."/old-page"]
//! redirect = "/new-page"                       # 307 by default
//! [route_rules."/old/**"]
//! redirect = { to = "/new/**", status = 308 }  # /old/a?b=1 → /new/a?b=1
//! [route_rules."/proxy/**"]
//! proxy = "/api/**"                            # an internal path, or http://host/…
//! [route_rules."/api/**"]
//! headers = { "x-powered-by" = "taskyard" }
//! cors = true                                  # or { origin = [..], credentials = true, .. }
//! [route_rules."/blog/**"]
//! swr = 600                                    # cache = { max_age = 600, swr = true }
//! ```
//!
//! A key may start with a method, as in Nitro 3: `[route_rules."POST /api/**"]` applies to
//! `POST` requests only, and is narrower than the same pattern without one (a CORS
//! preflight is an `OPTIONS` request: its `cors` belongs on a rule without a method, or on
//! one for `OPTIONS`).
//!
//! Every rule whose pattern matches a request applies, merged from the broadest pattern to
//! the narrowest: a narrower rule replaces a broader one's value for the same key, and
//! `false` removes an inherited one (`cors = false`, `cache = false`, `headers = false`).
//! Rule headers are set last, so they land on error responses too and override the cache's
//! `cache-control`.

use std::sync::Arc;

use axum::extract::Request;
use axum::http::{HeaderName, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use toml::{Table, Value};

use super::cache::CacheRule;
use super::cors::Cors;
use super::{Front, Inner, call};
use crate::Error;
use crate::http::HttpError;
use crate::pattern::PathPattern;

/// The app's route rules, broadest first.
#[derive(Debug, Clone, Default)]
pub struct RouteRules {
    rules: Vec<Rule>,
}

#[derive(Debug, Clone)]
struct Rule {
    /// The requests' method, for a method-scoped key (`POST /api/**`).
    method: Option<Method>,
    pattern: PathPattern,
    set: RuleSet,
}

/// The extra headers of a rule, checked when the rules are read.
type Headers = Arc<Vec<(HeaderName, HeaderValue)>>;

/// A value a rule sets: `None` when it says nothing of it, `Some(None)` for `false`.
type Setting<T> = Option<Option<T>>;

#[derive(Debug, Clone, Default)]
struct RuleSet {
    redirect: Setting<Target>,
    proxy: Setting<Target>,
    headers: Setting<Headers>,
    cors: Setting<Arc<Cors>>,
    cache: Setting<CacheRule>,
}

/// Where a redirect or proxy goes.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    to: String,
    /// For a `/**` target: the path the rule's pattern starts with, cut from the request
    /// path before the rest is appended.
    base: Option<String>,
    status: StatusCode,
}

/// The rules for one request, merged.
#[derive(Debug, Clone, Default)]
pub(crate) struct Resolved {
    redirect: Option<Target>,
    proxy: Option<Target>,
    headers: Option<Headers>,
    cors: Option<Arc<Cors>>,
    cache: Option<CacheRule>,
}

const KEYS: &str = "redirect, proxy, headers, cors, cache, swr";

impl RouteRules {
    /// The `[route_rules]` table of a `taskyard.toml` (none when absent). An error names
    /// the pattern, the key and what is accepted.
    pub fn from_config(table: &Table, origin: &str) -> Result<RouteRules, Error> {
        let Some(section) = table.get("route_rules") else {
            return Ok(RouteRules::default());
        };
        let Value::Table(section) = section else {
            return Err(Error::ConfigFile {
                origin: origin.to_owned(),
                message: format!(
                    "{origin}: `route_rules` must be a table of patterns, like [route_rules.\"/blog/**\"]"
                ),
            });
        };
        let mut rules = Vec::new();
        for (key, value) in section {
            let fail = |message: String| Error::ConfigFile {
                origin: origin.to_owned(),
                message: format!("{origin}: route rule `{key}`: {message}"),
            };
            let (method, pattern) = match key.split_once(' ') {
                Some((method, pattern)) => (Some(rule_method(method).map_err(fail)?), pattern.trim_start()),
                None => (None, key.as_str()),
            };
            if !pattern.starts_with('/') {
                return Err(fail(
                    "a pattern starts with `/`, like `/blog/**`, after an optional method, like `POST /api/**`"
                        .to_owned(),
                ));
            }
            let Value::Table(table) = value else {
                return Err(fail(format!("must be a table of rules ({KEYS})")));
            };
            let set = RuleSet::parse(pattern, table).map_err(fail)?;
            rules.push(Rule {
                method,
                pattern: PathPattern::new(pattern),
                set,
            });
        }
        rules.sort_by_cached_key(|rule| (specificity(rule.pattern.as_str()), rule.method.is_some()));
        Ok(RouteRules { rules })
    }

    /// True when no rule is set.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// The merged rules for a `method` request to `path`, or `None` when no rule matches.
    pub(crate) fn resolve(&self, method: &Method, path: &str) -> Option<Resolved> {
        if self.rules.is_empty() {
            return None;
        }
        let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
        let mut merged: Option<Resolved> = None;
        for rule in &self.rules {
            if rule.method.as_ref().is_some_and(|only| only != method)
                || !rule.pattern.matches_segments(&segments)
            {
                continue;
            }
            let merged = merged.get_or_insert_with(Resolved::default);
            let set = &rule.set;
            apply(&mut merged.redirect, &set.redirect);
            apply(&mut merged.proxy, &set.proxy);
            apply(&mut merged.headers, &set.headers);
            apply(&mut merged.cors, &set.cors);
            apply(&mut merged.cache, &set.cache);
        }
        merged
    }
}

/// The method of a method-scoped key, in capitals as HTTP writes it.
fn rule_method(method: &str) -> Result<Method, String> {
    const METHODS: [Method; 7] = [
        Method::GET,
        Method::HEAD,
        Method::POST,
        Method::PUT,
        Method::PATCH,
        Method::DELETE,
        Method::OPTIONS,
    ];
    METHODS
        .into_iter()
        .find(|known| known.as_str() == method)
        .ok_or_else(|| {
            format!(
                "`{method}` is not a method a rule can be scoped to; write GET, HEAD, POST, PUT, PATCH, DELETE or OPTIONS before the pattern"
            )
        })
}

fn apply<T: Clone>(merged: &mut Option<T>, setting: &Setting<T>) {
    if let Some(value) = setting {
        merged.clone_from(value);
    }
}

/// Broad to narrow: fewer literal segments first, then patterns with wildcards before
/// exact ones, then shorter ones.
fn specificity(pattern: &str) -> (usize, bool, usize, String) {
    let segments: Vec<&str> = pattern.split('/').filter(|s| !s.is_empty()).collect();
    let literals = segments.iter().filter(|s| **s != "*" && **s != "**").count();
    let exact = literals == segments.len();
    (literals, exact, segments.len(), pattern.to_owned())
}

impl RuleSet {
    fn parse(pattern: &str, table: &Table) -> Result<RuleSet, String> {
        let mut set = RuleSet::default();
        // The strip base of a `/**` pattern: `/old` for `/old/**`.
        let base = pattern.strip_suffix("/**").map(|b| b.to_owned());
        for (key, value) in table {
            match key.as_str() {
                "redirect" => set.redirect = Some(target(value, base.as_deref(), true)?),
                "proxy" => set.proxy = Some(target(value, base.as_deref(), false)?),
                "headers" => set.headers = Some(headers(value)?),
                "cors" => set.cors = Some(Cors::parse(value)?.map(Arc::new)),
                "cache" => set.cache = Some(CacheRule::parse(value)?),
                "swr" => set.cache = Some(CacheRule::parse_swr(value)?),
                other => return Err(format!("`{other}` is not a rule; the rules are {KEYS}")),
            }
        }
        if table.contains_key("cache") && table.contains_key("swr") {
            return Err("give `cache` or its shorthand `swr`, not both".to_owned());
        }
        Ok(set)
    }
}

/// `redirect` / `proxy`: a string, `{to, status}`, or `false`.
fn target(value: &Value, base: Option<&str>, redirect: bool) -> Result<Option<Target>, String> {
    let key = if redirect { "redirect" } else { "proxy" };
    let (to, status) = match value {
        Value::Boolean(false) => return Ok(None),
        Value::String(to) => (to.clone(), None),
        Value::Table(table) => {
            let Some(Value::String(to)) = table.get("to") else {
                return Err(format!("`{key}` needs `to`, a path or URL"));
            };
            for field in table.keys() {
                let known = if redirect {
                    ["to", "status", "statusCode"].as_slice()
                } else {
                    &["to"]
                };
                if !known.contains(&field.as_str()) {
                    return Err(format!(
                        "`{key}` does not take `{field}`; it takes {}",
                        known.join(", ")
                    ));
                }
            }
            let status = table.get("status").or_else(|| table.get("statusCode"));
            (to.clone(), status)
        }
        _ => return Err(format!("`{key}` is a path or URL, a table with `to`, or false")),
    };
    let status = match status {
        None => StatusCode::TEMPORARY_REDIRECT,
        Some(Value::Integer(code)) => match u16::try_from(*code)
            .ok()
            .and_then(|c| StatusCode::from_u16(c).ok())
        {
            Some(status) if status.is_redirection() => status,
            _ => {
                return Err(format!(
                    "`{key}.status` {code} is not a redirect status; use 301, 302, 303, 307 or 308"
                ));
            }
        },
        Some(other) => return Err(format!("`{key}.status` must be a number, not {other:?}")),
    };
    let external = to.starts_with("http://") || to.starts_with("https://");
    if !external && !to.starts_with('/') {
        return Err(format!(
            "`{key}` target `{to}` must be a path starting with `/` or an http:// URL"
        ));
    }
    if !redirect {
        super::proxy::check_target(&to)?;
    }
    let wildcard = to.ends_with("/**");
    if wildcard && base.is_none() {
        return Err(format!(
            "the target `{to}` ends in `/**`, which carries the rest of the path, so the pattern must end in `/**` too"
        ));
    }
    Ok(Some(Target {
        base: if wildcard { base.map(str::to_owned) } else { None },
        to,
        status,
    }))
}

fn headers(value: &Value) -> Result<Option<Headers>, String> {
    let table = match value {
        Value::Boolean(false) => return Ok(None),
        Value::Table(table) => table,
        _ => return Err("`headers` is a table of header names to values, or false".to_owned()),
    };
    let mut headers = Vec::new();
    for (name, value) in table {
        let text = match value {
            Value::String(text) => text.clone(),
            Value::Integer(n) => n.to_string(),
            Value::Boolean(b) => b.to_string(),
            _ => return Err(format!("header `{name}` must be a string")),
        };
        let name =
            HeaderName::try_from(name.as_str()).map_err(|_| format!("`{name}` is not a header name"))?;
        let value =
            HeaderValue::try_from(text.as_str()).map_err(|_| format!("`{text}` is not a header value"))?;
        headers.push((name, value));
    }
    Ok(Some(Arc::new(headers)))
}

impl Target {
    /// The target for a request to `uri`: for a `/**` target the request path past the
    /// rule's base is appended; the query is kept. `None` when the path is not under the
    /// base.
    fn for_request(&self, uri: &Uri) -> Option<String> {
        let path = uri.path();
        let mut target = match (&self.base, self.to.strip_suffix("/**")) {
            (Some(base), Some(prefix)) => {
                let rest = path.strip_prefix(base.as_str())?;
                if !(rest.is_empty() || rest.starts_with('/')) {
                    return None;
                }
                // Slashes leading the rest collapse to one: `/proxy//evil.com` must reach
                // `/evil.com` on the target, never `//evil.com`, which a browser or a
                // server reads as another host.
                let bare = rest.trim_start_matches('/');
                let rest = if bare.len() + 1 < rest.len() {
                    &rest[rest.len() - bare.len() - 1..]
                } else {
                    rest
                };
                let mut target = format!("{prefix}{rest}");
                if target.is_empty() {
                    target.push('/');
                }
                target
            }
            _ => self.to.clone(),
        };
        // `//host` would be read as another site.
        if !target.starts_with("http") {
            while target.starts_with("//") {
                target.remove(0);
            }
        }
        if let Some(query) = uri.query() {
            target.push(if target.contains('?') { '&' } else { '?' });
            target.push_str(query);
        }
        Some(target)
    }
}

impl Resolved {
    /// Answers the request by the rules, or passes it on: a CORS preflight, a redirect, a
    /// proxy, a cached response.
    pub(crate) async fn handle(&self, front: &Front, request: Request, inner: Inner) -> Response {
        if let Some(cors) = &self.cors
            && let Some(preflight) = cors.preflight(&request)
        {
            return preflight;
        }
        if let Some(redirect) = &self.redirect {
            return match redirect.for_request(request.uri()) {
                Some(location) => match HeaderValue::try_from(location) {
                    Ok(location) => (redirect.status, [(header::LOCATION, location)]).into_response(),
                    Err(_) => outside_base().into_response(),
                },
                None => outside_base().into_response(),
            };
        }
        if let Some(proxy) = &self.proxy {
            let Some(target) = proxy.for_request(request.uri()) else {
                return outside_base().into_response();
            };
            return front.proxy.forward(front, target, request).await;
        }
        if let Some(cache) = &self.cache
            && matches!(*request.method(), Method::GET | Method::HEAD)
        {
            return front.cache.serve(cache, request, inner).await;
        }
        call(inner, request).await
    }

    /// Sets the CORS and rule headers on the response, whatever answered.
    pub(crate) fn finish(&self, response: &mut Response, origin: Option<&HeaderValue>) {
        if let Some(cors) = &self.cors {
            cors.decorate(response, origin);
        }
        if let Some(headers) = &self.headers {
            for (name, value) in headers.iter() {
                response.headers_mut().insert(name.clone(), value.clone());
            }
        }
    }
}

fn outside_base() -> HttpError {
    HttpError::bad_request("the path is outside the route rule's base")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(text: &str) -> RouteRules {
        RouteRules::from_config(&text.parse().expect("toml"), "test.toml").expect("rules")
    }

    #[test]
    fn targets_carry_the_rest_of_the_path_and_the_query() {
        let rules = rules(
            r#"
            [route_rules."/old/**"]
            redirect = "https://example.com/new/**"
            [route_rules."/page"]
            redirect = "/other"
            [route_rules."/any/**"]
            redirect = "/**"
            "#,
        );
        let target = |path: &str| {
            let resolved = rules
                .resolve(&Method::GET, path.split('?').next().unwrap_or(""))
                .expect("a rule");
            resolved
                .redirect
                .expect("a redirect")
                .for_request(&path.parse().expect("uri"))
        };
        assert_eq!(
            target("/old/a/b?x=1").as_deref(),
            Some("https://example.com/new/a/b?x=1")
        );
        assert_eq!(target("/old").as_deref(), Some("https://example.com/new"));
        assert_eq!(target("/page?x=1").as_deref(), Some("/other?x=1"));
        assert_eq!(target("/any//evil.com").as_deref(), Some("/evil.com"));
        assert_eq!(
            target("/old///evil.com/x").as_deref(),
            Some("https://example.com/new/evil.com/x")
        );
    }

    #[test]
    fn narrower_rules_override_broader_ones_and_false_removes() {
        let rules = rules(
            r#"
            [route_rules."/narrow/exact"]
            cors = false
            [route_rules."/**"]
            headers = { "x-a" = "1" }
            cors = true
            [route_rules."/narrow/**"]
            headers = { "x-b" = "2" }
            "#,
        );
        let broad = rules.resolve(&Method::GET, "/x").expect("broad");
        assert!(broad.cors.is_some());
        let narrow = rules.resolve(&Method::GET, "/narrow/exact").expect("narrow");
        assert!(narrow.cors.is_none());
        let headers = narrow.headers.expect("headers");
        assert_eq!(headers[0].0.as_str(), "x-b");
    }

    #[test]
    fn method_scoped_keys_apply_to_their_method_only_and_are_narrower() {
        let rules = rules(
            r#"
            [route_rules."POST /api/**"]
            headers = { "x-write" = "1" }
            [route_rules."/api/**"]
            headers = { "x-any" = "1" }
            cors = true
            "#,
        );
        let header = |method: Method| {
            let headers = rules
                .resolve(&method, "/api/x")
                .expect("a rule")
                .headers
                .expect("headers");
            headers[0].0.as_str().to_owned()
        };
        assert_eq!(header(Method::POST), "x-write");
        assert_eq!(header(Method::GET), "x-any");
        // The broader rule's other keys still apply to the method's requests.
        assert!(
            rules
                .resolve(&Method::POST, "/api/x")
                .expect("a rule")
                .cors
                .is_some()
        );
        let error = RouteRules::from_config(
            &"[route_rules.\"FETCH /api/**\"]\ncors = true"
                .parse()
                .expect("toml"),
            "test.toml",
        )
        .expect_err("refused")
        .to_string();
        assert!(
            error.contains("route rule `FETCH /api/**`: `FETCH` is not a method"),
            "{error}"
        );
    }

    #[test]
    fn bad_rules_name_the_pattern_and_the_key() {
        let cases = [
            (
                "[route_rules.\"/a\"]\nredirec = \"/b\"",
                "`redirec` is not a rule",
            ),
            (
                "[route_rules.\"/a\"]\nredirect = \"/b/**\"",
                "the pattern must end in `/**`",
            ),
            (
                "[route_rules.\"/a\"]\nredirect = { to = \"/b\", status = 200 }",
                "not a redirect status",
            ),
            ("[route_rules.\"a\"]\nheaders = {}", "starts with `/`"),
            (
                "[route_rules.\"/a\"]\ncors = { origin = \"*\", credentials = true }",
                "credentials",
            ),
            ("[route_rules.\"/a\"]\nswr = \"x\"", "`swr`"),
        ];
        for (text, expected) in cases {
            let error = RouteRules::from_config(&text.parse().expect("toml"), "t.toml").expect_err(text);
            assert!(error.to_string().contains(expected), "{text}: {error}");
        }
    }
}
