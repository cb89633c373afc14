//! [`PathPattern`]: a request-path pattern such as `/blog/**` or `/users/*/posts`.
//!
//! `*` matches exactly one segment; `**` matches any number of segments, none included.
//! Empty segments are ignored, so `/a//b/` is `/a/b`.

use std::fmt;

/// A compiled path pattern.
///
/// ```
/// use taskyard::route::PathPattern;
///
/// let blog = PathPattern::new("/blog/**");
/// assert!(blog.matches("/blog"));
/// assert!(blog.matches("/blog/2026/rust"));
/// assert!(!blog.matches("/blogs"));
/// assert!(PathPattern::new("/users/*").matches("/users/42"));
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct PathPattern {
    source: String,
    segments: Vec<Segment>,
}

#[derive(Clone, PartialEq, Eq)]
enum Segment {
    Literal(String),
    One,
    Any,
}

impl PathPattern {
    /// The pattern as written (`/blog/**`, `/api/*`, `/about`).
    pub fn new(pattern: &str) -> Self {
        let segments = pattern
            .split('/')
            .filter(|s| !s.is_empty())
            .map(|s| match s {
                "*" => Segment::One,
                "**" => Segment::Any,
                literal => Segment::Literal(literal.to_owned()),
            })
            .collect();
        PathPattern {
            source: pattern.to_owned(),
            segments,
        }
    }

    /// True if `path` (without its query) matches.
    pub fn matches(&self, path: &str) -> bool {
        let path: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
        matches_from(&self.segments, &path)
    }

    /// True if a path split into its non-empty segments matches.
    pub(crate) fn matches_segments(&self, path: &[&str]) -> bool {
        matches_from(&self.segments, path)
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.source
    }
}

fn matches_from(pattern: &[Segment], path: &[&str]) -> bool {
    match pattern.split_first() {
        None => path.is_empty(),
        Some((Segment::Any, rest)) => (0..=path.len()).any(|skip| matches_from(rest, &path[skip..])),
        Some((segment, rest)) => match path.split_first() {
            None => false,
            Some((first, path_rest)) => {
                let fits = match segment {
                    Segment::Literal(literal) => literal == first,
                    _ => true,
                };
                fits && matches_from(rest, path_rest)
            }
        },
    }
}

impl fmt::Debug for PathPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PathPattern({:?})", self.source)
    }
}

impl fmt::Display for PathPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

#[cfg(test)]
mod tests {
    use super::PathPattern;

    #[test]
    fn stars_match_one_segment_and_double_stars_any_number() {
        let cases = [
            ("/", "/", true),
            ("/", "/a", false),
            ("/**", "/", true),
            ("/**", "/a/b/c", true),
            ("/blog/**", "/blog", true),
            ("/blog/**", "/blog/a/b", true),
            ("/blog/**", "/blogs/a", false),
            ("/users/*", "/users/1", true),
            ("/users/*", "/users", false),
            ("/users/*", "/users/1/posts", false),
            ("/users/*/posts", "/users/1/posts", true),
            ("/a/**/z", "/a/z", true),
            ("/a/**/z", "/a/b/c/z", true),
            ("/a/**/z", "/a/b/c", false),
            ("/hello", "/hello/", true),
            ("/hello", "//hello", true),
        ];
        for (pattern, path, expected) in cases {
            assert_eq!(
                PathPattern::new(pattern).matches(path),
                expected,
                "{pattern} against {path}"
            );
        }
    }
}
