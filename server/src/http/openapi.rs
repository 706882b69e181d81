//! `GET /api/openapi.json`: the API description, generated from kiln-core's wire types (utoipa
//! schemas derived under its `openapi` feature), the handlers' `#[utoipa::path]`s, and the two
//! shapes below that only error and create replies build. The schemathesis run in the test
//! command holds the server to it; a test here holds it to the route table.

use axum::Json;
use kiln_core::event::ProgressEvent;
use kiln_core::request::{
    CopyRequest, CreateRequest, DeleteRequest, KilnInfo, License, ListModel, ListResponse, Message, ModelDetails,
    QuantizerBackend, QuantizerInfo, RegistryRequest, ShowRequest, ShowResponse, ShowTensor, VersionResponse,
};
use serde::Serialize;
use utoipa::{OpenApi, ToSchema};

/// Every error: `{"error": "..."}`.
#[derive(Serialize, ToSchema)]
pub struct ErrorResponse {
    /// What went wrong, as Ollama's clients show it.
    pub error: String,
}

/// The non-streaming create reply.
#[derive(Serialize, ToSchema)]
pub struct StatusResponse {
    /// `success`.
    pub status: String,
}

/// The description.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "kiln",
        description = "Ollama's model-creation API (create, blobs, tags, show, copy, delete, pull, push), served by kiln."
    ),
    paths(
        crate::api::version::root,
        crate::api::version::version,
        crate::api::version::info,
        crate::api::blobs::head,
        crate::api::blobs::upload,
        crate::api::create::create,
        crate::api::models::tags,
        crate::api::models::show,
        crate::api::models::copy,
        crate::api::models::delete,
        crate::api::registry::pull,
        crate::api::registry::push,
        openapi_json,
    ),
    components(schemas(
        CreateRequest,
        ShowRequest,
        CopyRequest,
        DeleteRequest,
        License,
        Message,
        ModelDetails,
        ListModel,
        ListResponse,
        ProgressEvent,
        ErrorResponse,
        StatusResponse,
        VersionResponse,
        ShowResponse,
        ShowTensor,
        KilnInfo,
        QuantizerInfo,
        QuantizerBackend,
        RegistryRequest
    ))
)]
pub struct ApiDoc;

/// `GET /api/openapi.json`.
#[utoipa::path(get, path = "/api/openapi.json", responses((status = 200, description = "This description", content_type = "application/json", body = Object)))]
pub async fn openapi_json() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}

#[cfg(test)]
mod tests {
    //! The description and the route table cannot drift apart: every `.route(…)` path of
    //! `http/mod.rs` is documented, every documented path is routed, and each documented path
    //! answers exactly its documented methods. (utoipa-axum's `OpenApiRouter` would derive one
    //! from the other, but its utoipa-5 release depends on the unmaintained `paste`, and its
    //! `routes!` hides each path inside the handler's attribute, out of the route table.)

    use std::collections::BTreeSet;
    use std::sync::Arc;

    use axum::body::Body;
    use axum::http::{Method, Request, StatusCode};
    use tower::ServiceExt as _;
    use utoipa::openapi::HttpMethod;

    use super::ApiDoc;
    use crate::quantize::backend::Quantizer;
    use crate::state::AppState;
    use crate::store::Store;
    use utoipa::OpenApi as _;

    /// The paths the route table's source names in `.route("…"`.
    fn routed_paths() -> BTreeSet<String> {
        include_str!("mod.rs")
            .split(".route(\"")
            .skip(1)
            .filter_map(|rest| rest.split_once('"').map(|(path, _)| path.to_owned()))
            .collect()
    }

    fn documented() -> Vec<(String, Vec<HttpMethod>)> {
        let doc = ApiDoc::openapi();
        doc.paths
            .paths
            .iter()
            .map(|(path, item)| {
                let ops = [
                    (HttpMethod::Get, item.get.is_some()),
                    (HttpMethod::Head, item.head.is_some()),
                    (HttpMethod::Post, item.post.is_some()),
                    (HttpMethod::Put, item.put.is_some()),
                    (HttpMethod::Delete, item.delete.is_some()),
                    (HttpMethod::Patch, item.patch.is_some()),
                ];
                (path.clone(), ops.into_iter().filter(|(_, on)| *on).map(|(m, _)| m).collect())
            })
            .collect()
    }

    #[test]
    fn every_route_is_documented_and_every_documented_path_routed() {
        let routed = routed_paths();
        assert!(routed.contains("/api/show"), "the route table's source no longer reads as expected");
        let documented: BTreeSet<String> = documented().into_iter().map(|(p, _)| p).collect();
        assert_eq!(routed, documented, "route table (left) vs OpenAPI paths (right)");
    }

    #[tokio::test]
    async fn each_documented_path_answers_exactly_its_documented_methods() {
        let dir = tempfile::tempdir().unwrap();
        let pool = Arc::new(rayon::ThreadPoolBuilder::new().num_threads(1).build().unwrap());
        let state = AppState {
            store: Arc::new(Store::open(dir.path()).unwrap()),
            quantizer: Arc::new(Quantizer::cpu(pool, 1, "test")),
            ui: Some(dir.path().join("no-ui")),
            loopback: false,
            hostname: None,
            origins: String::new(),
            limits: Arc::new(crate::http::limits::Limits::new(&crate::config::LimitArgs::default())),
        };
        let app = super::super::app(state);
        let methods = [
            (HttpMethod::Get, Method::GET),
            (HttpMethod::Head, Method::HEAD),
            (HttpMethod::Post, Method::POST),
            (HttpMethod::Put, Method::PUT),
            (HttpMethod::Delete, Method::DELETE),
            (HttpMethod::Patch, Method::PATCH),
        ];
        for (path, documented) in documented() {
            // Handlers get an empty body and a bad digest: they answer 4xx, never the router's 405.
            let uri = path.replace("{digest}", "x");
            for (doc_method, method) in &methods {
                let req = Request::builder().method(method.clone()).uri(&uri).body(Body::empty()).unwrap();
                let status = app.clone().oneshot(req).await.unwrap().status();
                // axum answers HEAD with the GET handler, as Ollama's router does; that needs no entry.
                let expected = documented.contains(doc_method)
                    || (*doc_method == HttpMethod::Head && documented.contains(&HttpMethod::Get));
                assert_eq!(status != StatusCode::METHOD_NOT_ALLOWED, expected, "{method} {path}: {status}");
            }
        }
    }
}
