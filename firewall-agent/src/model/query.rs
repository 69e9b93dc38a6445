//! What every describe shares: filters with AWS's `*` / `?` wildcards, the `tag-key` and
//! `tag:<key>` filters, and pagination by `MaxResults` / `NextToken`.

use super::tagging::Tag;
use crate::api::{ApiError, ApiResult, types::common::Filter};

impl Filter {
    /// Whether any of the filter's values (with `*` / `?` wildcards) matches `text`.
    pub fn matches(&self, text: &str) -> bool {
        self.values.iter().any(|v| wildcard_match(v, text))
    }

    /// For the `tag-key` and `tag:<key>` filters every describe shares: whether `tags` match;
    /// `None` for any other filter.
    pub fn matches_tags(&self, tags: &[Tag]) -> Option<bool> {
        if self.name == "tag-key" {
            return Some(tags.iter().any(|t| self.matches(&t.key)));
        }
        let key = self.name.strip_prefix("tag:")?;
        Some(tags.iter().any(|t| t.key == key && self.matches(&t.value)))
    }
}

/// The error for a filter name a describe does not know.
pub fn invalid_filter(name: &str) -> ApiError {
    ApiError::invalid_value(format!("The filter '{name}' is invalid"))
}

/// AWS filter values may use `*` and `?` wildcards.
fn wildcard_match(pattern: &str, text: &str) -> bool {
    fn go(p: &[char], t: &[char]) -> bool {
        match (p.first(), t.first()) {
            (None, None) => true,
            (Some('*'), _) => go(&p[1..], t) || (!t.is_empty() && go(p, &t[1..])),
            (Some('?'), Some(_)) => go(&p[1..], &t[1..]),
            (Some(a), Some(b)) if a == b => go(&p[1..], &t[1..]),
            _ => false,
        }
    }
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    go(&p, &t)
}

/// One page of a filtered listing.
pub struct Page<T> {
    pub items: Vec<T>,
    /// The last item's ID when more follow.
    pub next_token: Option<String>,
}

/// Splits a filtered listing of `(id, item)` into AWS pages: without `MaxResults` everything
/// (and no `NextToken`); with it, at most that many items after the `NextToken` item.
pub fn paginate<T>(
    items: Vec<(String, T)>,
    max_results: Option<i64>,
    next_token: Option<&str>,
) -> ApiResult<Page<T>> {
    let start = match next_token {
        None => 0,
        Some(token) => items
            .iter()
            .position(|(id, _)| id == token)
            .map(|i| i + 1)
            .ok_or_else(|| {
                ApiError::invalid_value(format!(
                    "The value '{token}' for parameter NextToken is invalid."
                ))
            })?,
    };
    let Some(max) = max_results else {
        return Ok(Page {
            items: items.into_iter().skip(start).map(|(_, v)| v).collect(),
            next_token: None,
        });
    };
    if !(5..=1000).contains(&max) {
        return Err(ApiError::invalid_value(format!(
            "Value ( {max} ) for parameter maxResults is invalid. Expecting a value between 5 and 1000."
        )));
    }
    let rest: Vec<(String, T)> = items.into_iter().skip(start).collect();
    let more = rest.len() > max as usize;
    let page: Vec<(String, T)> = rest.into_iter().take(max as usize).collect();
    let next_token = if more {
        page.last().map(|(id, _)| id.clone())
    } else {
        None
    };
    Ok(Page {
        items: page.into_iter().map(|(_, v)| v).collect(),
        next_token,
    })
}
