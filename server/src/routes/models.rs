//! `/model/info`: the models this gateway serves and their prices, for the console's forms.

use crate::{providers::catalog::picos_to_usd, state::AppState};
use app::types::{ModelEntry, ModelList, ModelPrice};
use axum::{extract::State, Json};
use utoipa_axum::{router::OpenApiRouter, routes};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(info))
}

/// The models this gateway serves, with their prices.
#[utoipa::path(get, path = "/model/info", tag = "models",
    responses((status = 200, description = "The models", body = ModelList)))]
async fn info(State(state): State<AppState>) -> Json<ModelList> {
    let data = state
        .models
        .names()
        .iter()
        .filter_map(|name| state.models.get(name))
        .map(|d| ModelEntry {
            model_name: d.model_name.clone(),
            model_info: ModelPrice {
                input_cost_per_token: picos_to_usd(d.spec.price.input),
                output_cost_per_token: picos_to_usd(d.spec.price.output),
                max_output_tokens: Some(d.spec.max_output_tokens),
            },
        })
        .collect();
    Json(ModelList { data })
}
