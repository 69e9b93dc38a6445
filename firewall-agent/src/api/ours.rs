//! The handlers of our own actions that need more than the model: the nftables export.

use super::{
    ApiError, ApiResult,
    types::ours::{ExportNftablesRequest, ExportNftablesResponse},
};
use crate::{model::State, nft};

/// `export --format nftables [--linear]`: the same policy as an nftables ruleset.
pub fn export_nftables(
    state: &State,
    req: ExportNftablesRequest,
) -> ApiResult<ExportNftablesResponse> {
    if req.format.as_deref().is_some_and(|f| f != "nftables") {
        return Err(ApiError::invalid_value(
            "The only export format is nftables",
        ));
    }
    let layout = match req.layout.as_deref() {
        None | Some("sets") => nft::Layout::Sets,
        Some("linear") => nft::Layout::Linear,
        Some(other) => {
            return Err(ApiError::invalid_value(format!(
                "Unknown layout '{other}': sets or linear"
            )));
        }
    };
    Ok(ExportNftablesResponse {
        ruleset: nft::render(state, layout),
    })
}
