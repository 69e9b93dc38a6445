//! The console's files, compiled into the binary (nothing is fetched at run time): the pages'
//! HTML, the style sheet and one script per page, served under `/console/assets/`.

use axum::{
    extract::Path,
    http::{StatusCode, header},
    response::{IntoResponse, Response},
};

/// One embedded file: its name under `/console/assets/`, its media type, its bytes.
struct Asset {
    name: &'static str,
    media_type: &'static str,
    body: &'static str,
}

macro_rules! assets {
    ($($name:literal => $media:expr),* $(,)?) => {
        &[$(Asset {
            name: $name,
            media_type: $media,
            body: include_str!(concat!("../../../console/", $name)),
        }),*]
    };
}

const JS: &str = "text/javascript; charset=utf-8";

static ASSETS: &[Asset] = assets! {
    "console.css" => "text/css; charset=utf-8",
    "api.js" => JS,
    "app.js" => JS,
    "groups.js" => JS,
    "group_detail.js" => JS,
    "rules.js" => JS,
    "instances.js" => JS,
    "network_interfaces.js" => JS,
    "subnets.js" => JS,
    "global.js" => JS,
    "dataplane.js" => JS,
    "sign-in.js" => JS,
};

/// The signed-in console's one page (the scripts draw each view into it).
pub const INDEX: &str = include_str!("../../../console/index.html");
/// The sign-in page.
pub const SIGN_IN: &str = include_str!("../../../console/sign-in.html");

/// The pages may load only the console's own files, and no other site may frame them.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// An HTML page with the console's security headers.
pub fn page(status: StatusCode, html: String) -> Response {
    (
        status,
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
            (header::X_FRAME_OPTIONS, "DENY"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        html,
    )
        .into_response()
}

/// `GET /console/assets/{name}`.
pub async fn serve(Path(name): Path<String>) -> Response {
    match ASSETS.iter().find(|a| a.name == name) {
        Some(asset) => (
            [
                (header::CONTENT_TYPE, asset.media_type),
                (header::CACHE_CONTROL, "no-cache"),
                (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            ],
            asset.body,
        )
            .into_response(),
        None => (StatusCode::NOT_FOUND, "no such console file\n").into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_script_the_page_loads_is_embedded() {
        for line in INDEX.lines().chain(SIGN_IN.lines()) {
            if let Some((_, rest)) = line.split_once("src=\"/console/assets/") {
                let name = rest.split('"').next().expect("quoted");
                assert!(
                    ASSETS.iter().any(|a| a.name == name),
                    "{name} is not embedded"
                );
            }
        }
        assert!(
            ASSETS
                .iter()
                .all(|a| a.media_type != JS || a.name.ends_with(".js"))
        );
    }
}
