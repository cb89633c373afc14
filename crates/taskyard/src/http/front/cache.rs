//! The `cache` rule (and its `swr` shorthand): responses to `GET` and `HEAD` kept in memory.
//!
//! A fresh entry (younger than `max_age`) is served as it is. A stale one is, with `swr`,
//! served at once while one background call refreshes it; without `swr` it is a miss.
//! Concurrent misses of one key share one handler call. Only responses below 400 with a
//! body are kept. The key is the path and query plus the `varies` headers, and those (with
//! `host`) are the only request headers the handler sees, so a cached answer can never
//! depend on a header the key leaves out. Answers carry `etag`, `last-modified` and
//! `cache-control` (`s-maxage=N, stale-while-revalidate` with `swr`, `max-age=N` without),
//! and a matching `if-none-match` gets 304.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use axum::body::{Body, Bytes};
use axum::extract::Request;
use axum::http::{Extensions, HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use toml::Value;

use super::{Inner, call};
use crate::http::HttpError;
use crate::sync::lock;

/// How many keys the cache holds before it drops the older half.
const MAX_KEYS: usize = 10_000;

#[derive(Debug, Clone)]
pub(crate) struct CacheRule {
    max_age: Duration,
    swr: bool,
    varies: Arc<Vec<HeaderName>>,
}

impl Default for CacheRule {
    fn default() -> Self {
        CacheRule {
            max_age: Duration::from_secs(1),
            swr: true,
            varies: Arc::new(Vec::new()),
        }
    }
}

impl CacheRule {
    /// `cache = false | { max_age = N, swr = bool, varies = ["header", ..] }`.
    pub(crate) fn parse(value: &Value) -> Result<Option<CacheRule>, String> {
        let table = match value {
            Value::Boolean(false) => return Ok(None),
            Value::Boolean(true) => return Ok(Some(CacheRule::default())),
            Value::Table(table) => table,
            _ => return Err("`cache` is false or a table of max_age, swr, varies".to_owned()),
        };
        let mut rule = CacheRule::default();
        for (key, value) in table {
            match (key.as_str(), value) {
                ("max_age" | "maxAge", Value::Integer(seconds)) if *seconds >= 0 => {
                    rule.max_age = Duration::from_secs(*seconds as u64);
                }
                ("max_age" | "maxAge", _) => return Err("`cache.max_age` is a number of seconds".to_owned()),
                ("swr", Value::Boolean(swr)) => rule.swr = *swr,
                ("swr", _) => return Err("`cache.swr` is true or false".to_owned()),
                ("varies", Value::Array(items)) => {
                    let mut varies = Vec::new();
                    for item in items {
                        let name = item
                            .as_str()
                            .and_then(|name| HeaderName::try_from(name).ok())
                            .ok_or_else(|| {
                                format!("`cache.varies` lists header names; {item:?} is not one")
                            })?;
                        varies.push(name);
                    }
                    rule.varies = Arc::new(varies);
                }
                ("varies", _) => return Err("`cache.varies` is a list of header names".to_owned()),
                (other, _) => {
                    return Err(format!(
                        "`cache` does not take `{other}`; it takes max_age, swr, varies"
                    ));
                }
            }
        }
        Ok(Some(rule))
    }

    /// `swr = true` (cache with `swr`) or `swr = N` (and `max_age = N`); `swr = false` is
    /// `cache = false`.
    pub(crate) fn parse_swr(value: &Value) -> Result<Option<CacheRule>, String> {
        match value {
            Value::Boolean(false) => Ok(None),
            Value::Boolean(true) => Ok(Some(CacheRule::default())),
            Value::Integer(seconds) if *seconds >= 0 => Ok(Some(CacheRule {
                max_age: Duration::from_secs(*seconds as u64),
                ..CacheRule::default()
            })),
            _ => Err("`swr` is true, false or a number of seconds (the max age)".to_owned()),
        }
    }

    fn cache_control(&self) -> HeaderValue {
        let seconds = self.max_age.as_secs();
        let text = match self.swr {
            true => format!("s-maxage={seconds}, stale-while-revalidate"),
            false => format!("max-age={seconds}"),
        };
        HeaderValue::try_from(text).unwrap_or(HeaderValue::from_static("no-cache"))
    }
}

/// The cached responses of the app.
#[derive(Default)]
pub(crate) struct ResponseCache {
    slots: Mutex<HashMap<String, Arc<Slot>>>,
}

#[derive(Default)]
struct Slot {
    state: Mutex<SlotState>,
    /// Held while the handler is called for a miss, so concurrent misses wait for it.
    fill: tokio::sync::Mutex<()>,
}

#[derive(Default)]
struct SlotState {
    entry: Option<Arc<Entry>>,
    /// Counts the handler calls that filled the slot.
    generation: u64,
    refreshing: bool,
}

struct Entry {
    status: StatusCode,
    headers: HeaderMap,
    extensions: Extensions,
    body: Bytes,
    stored: Instant,
    modified: SystemTime,
    etag: HeaderValue,
}

impl Entry {
    fn cacheable(&self) -> bool {
        self.status.as_u16() < 400 && !self.body.is_empty()
    }
}

/// The request as the handler sees it under a cache rule: only the varied headers.
#[derive(Clone)]
struct Keyed {
    uri: Uri,
    headers: HeaderMap,
    extensions: Extensions,
}

impl Keyed {
    fn request(&self) -> Request {
        let mut request = Request::new(Body::empty());
        *request.method_mut() = Method::GET;
        *request.uri_mut() = self.uri.clone();
        *request.headers_mut() = self.headers.clone();
        *request.extensions_mut() = self.extensions.clone();
        request
    }
}

impl ResponseCache {
    pub(crate) async fn serve(&self, rule: &CacheRule, request: Request, inner: Inner) -> Response {
        let head = request.method() == Method::HEAD;
        let if_none_match = request.headers().get(header::IF_NONE_MATCH).cloned();
        let (parts, _) = request.into_parts();
        let mut headers = HeaderMap::new();
        let mut key = parts.uri.path_and_query().map_or("/", |p| p.as_str()).to_owned();
        for name in rule.varies.iter() {
            key.push('\n');
            key.push_str(name.as_str());
            key.push(':');
            for value in parts.headers.get_all(name) {
                headers.append(name.clone(), value.clone());
                key.push_str(&String::from_utf8_lossy(value.as_bytes()));
            }
        }
        if let Some(host) = parts.headers.get(header::HOST) {
            headers.insert(header::HOST, host.clone());
        }
        let keyed = Keyed {
            uri: parts.uri,
            headers,
            extensions: parts.extensions,
        };
        let slot = self.slot(key);
        let answer = |entry: &Entry| respond(entry, rule, if_none_match.as_ref(), head);

        let (entry, generation) = {
            let state = lock(&slot.state);
            (state.entry.clone(), state.generation)
        };
        if let Some(entry) = entry.filter(|e| e.cacheable()) {
            if entry.stored.elapsed() < rule.max_age {
                return answer(&entry);
            }
            if rule.swr {
                let refresh = !std::mem::replace(&mut lock(&slot.state).refreshing, true);
                if refresh {
                    let (slot, keyed, inner) = (slot.clone(), keyed.clone(), inner.clone());
                    let refresh = async move {
                        let _fill = slot.fill.lock().await;
                        let fresh = fill(&keyed, inner).await;
                        let mut state = lock(&slot.state);
                        // A failed refresh keeps the stale answer.
                        if fresh.cacheable() {
                            state.entry = Some(Arc::new(fresh));
                            state.generation += 1;
                        }
                        state.refreshing = false;
                    };
                    // The refresh calls the handler outside this request's task.
                    match crate::http::front::serving_runtime() {
                        Some(runtime) => tokio::spawn(crate::http::front::serving(runtime, refresh)),
                        None => tokio::spawn(refresh),
                    };
                }
                return answer(&entry);
            }
        }
        let _fill = slot.fill.lock().await;
        {
            let state = lock(&slot.state);
            if state.generation != generation
                && let Some(entry) = &state.entry
            {
                // Filled by the caller this one waited for: its answer is shared.
                return answer(entry);
            }
        }
        let entry = Arc::new(fill(&keyed, inner).await);
        {
            let mut state = lock(&slot.state);
            state.entry = Some(entry.clone());
            state.generation += 1;
        }
        answer(&entry)
    }

    fn slot(&self, key: String) -> Arc<Slot> {
        let mut slots = lock(&self.slots);
        if slots.len() >= MAX_KEYS && !slots.contains_key(&key) {
            evict(&mut slots);
        }
        slots.entry(key).or_default().clone()
    }
}

/// Drops the older half of the keys (and every key without an entry).
fn evict(slots: &mut HashMap<String, Arc<Slot>>) {
    let mut ages: Vec<Instant> = slots
        .values()
        .filter_map(|slot| lock(&slot.state).entry.as_ref().map(|e| e.stored))
        .collect();
    ages.sort();
    let cutoff = ages.get(ages.len() / 2).copied();
    slots.retain(|_, slot| {
        let stored = lock(&slot.state).entry.as_ref().map(|e| e.stored);
        matches!((stored, cutoff), (Some(stored), Some(cutoff)) if stored >= cutoff)
    });
}

/// Calls the handler for `keyed` and keeps what it answers.
async fn fill(keyed: &Keyed, inner: Inner) -> Entry {
    let response = call(inner, keyed.request()).await;
    let (parts, body) = response.into_parts();
    let (status, headers, extensions, body) = match axum::body::to_bytes(body, usize::MAX).await {
        Ok(body) => (parts.status, parts.headers, parts.extensions, body),
        Err(error) => {
            let (parts, body) = HttpError::from(error).into_response().into_parts();
            let body = axum::body::to_bytes(body, usize::MAX).await.unwrap_or_default();
            (parts.status, parts.headers, parts.extensions, body)
        }
    };
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    body.hash(&mut hasher);
    let etag = HeaderValue::try_from(format!("W/\"{:016x}\"", hasher.finish()))
        .unwrap_or(HeaderValue::from_static("W/\"0\""));
    Entry {
        status,
        headers,
        extensions,
        body,
        stored: Instant::now(),
        modified: SystemTime::now(),
        etag,
    }
}

fn respond(entry: &Entry, rule: &CacheRule, if_none_match: Option<&HeaderValue>, head: bool) -> Response {
    let mut response = Response::new(Body::empty());
    *response.headers_mut() = entry.headers.clone();
    *response.extensions_mut() = entry.extensions.clone();
    if !entry.cacheable() {
        *response.status_mut() = entry.status;
        if !head {
            *response.body_mut() = Body::from(entry.body.clone());
        }
        return response;
    }
    let headers = response.headers_mut();
    headers.insert(header::ETAG, entry.etag.clone());
    headers.insert(header::CACHE_CONTROL, rule.cache_control());
    if let Ok(modified) = HeaderValue::try_from(httpdate(entry.modified)) {
        headers.insert(header::LAST_MODIFIED, modified);
    }
    if if_none_match.is_some_and(|tag| tag == entry.etag) {
        *response.status_mut() = StatusCode::NOT_MODIFIED;
        response.headers_mut().remove(header::CONTENT_LENGTH);
        return response;
    }
    *response.status_mut() = entry.status;
    if !head {
        *response.body_mut() = Body::from(entry.body.clone());
    }
    response
}

/// An HTTP date (`Sun, 06 Nov 1994 08:49:37 GMT`).
fn httpdate(time: SystemTime) -> String {
    match jiff::Timestamp::try_from(time) {
        Ok(timestamp) => timestamp.strftime("%a, %d %b %Y %H:%M:%S GMT").to_string(),
        Err(_) => String::new(),
    }
}
