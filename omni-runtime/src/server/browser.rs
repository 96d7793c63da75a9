//! The browser client, `omni-runtime/js/`: `omni.js` and the ES modules it is made of, served
//! side by side under an endpoint's prefix, so that a page importing `{prefix}/omni.js` loads
//! the rest from there (the modules import each other by relative path).

use axum::Router;
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE, X_CONTENT_TYPE_OPTIONS};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

/// The browser client, as the files it is served as: each ES module's file name and source.
/// `omni.js` is the entry point, and the modules import each other by relative path, so
/// serve them all from one place, as an [`Endpoint`](super::Endpoint)'s router does (at
/// `{prefix}/{name}`). Their types are in `omni-runtime/js/omni.d.ts`.
///
/// No name begins with an endpoint route's (`ws`, `http`, `sse`, `mux`): a proxy rule or a
/// page's filter for `{prefix}/ws` that matches by prefix must not catch a module too.
pub const BROWSER_CLIENT: &[(&str, &str)] = &[
    ("omni.js", include_str!("../../js/omni.js")),
    ("client.js", include_str!("../../js/client.js")),
    ("config.js", include_str!("../../js/config.js")),
    ("dialer.js", include_str!("../../js/dialer.js")),
    ("eventstream.js", include_str!("../../js/eventstream.js")),
    ("msgpack.js", include_str!("../../js/msgpack.js")),
    ("multiplex.js", include_str!("../../js/multiplex.js")),
    ("presence.js", include_str!("../../js/presence.js")),
    ("stream.js", include_str!("../../js/stream.js")),
    ("websocket.js", include_str!("../../js/websocket.js")),
    ("wire.js", include_str!("../../js/wire.js")),
];

/// A route `/{name}` for each module of [`BROWSER_CLIENT`].
pub(super) fn router<S: Clone + Send + Sync + 'static>() -> Router<S> {
    BROWSER_CLIENT
        .iter()
        .fold(Router::new(), |router, &(name, source)| {
            router.route(
                &format!("/{name}"),
                get(move || async move { script(source) }),
            )
        })
}

/// A module as a script: revalidated on every load, so a page never runs a client older than
/// its server, and never sniffed as anything else.
fn script(source: &'static str) -> Response {
    (
        [
            (CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (CACHE_CONTROL, "no-cache"),
            (X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        source,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::BROWSER_CLIENT;

    /// The modules `source` imports or re-exports from (`import … from "./x.js";`, one line
    /// each); the type-only `@import`s in JSDoc comments name `omni.d.ts` and are skipped.
    fn imports(source: &str) -> Vec<&str> {
        source
            .lines()
            .filter(|line| line.starts_with("import ") || line.starts_with("export "))
            .filter_map(|line| line.split_once(" from \"./"))
            .filter_map(|(_, rest)| rest.split_once('"'))
            .map(|(name, _)| name)
            .collect()
    }

    #[test]
    fn every_module_imported_is_served() {
        let served: BTreeSet<&str> = BROWSER_CLIENT.iter().map(|&(name, _)| name).collect();
        let mut seen = 0;
        for &(name, source) in BROWSER_CLIENT {
            for import in imports(source) {
                seen += 1;
                assert!(
                    served.contains(import),
                    "{name} imports {import}, which is not served"
                );
            }
        }
        // The entry alone re-exports from four modules: the scan did find imports.
        assert!(seen >= 4, "only {seen} imports found");
    }

    #[test]
    fn no_module_is_named_like_the_start_of_a_route() {
        for &(name, _) in BROWSER_CLIENT {
            for route in ["ws", "http", "sse", "mux"] {
                assert!(
                    !name.starts_with(route),
                    "{name} begins like the route /{route}"
                );
            }
        }
    }

    #[test]
    fn every_module_of_the_directory_is_served() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/js");
        let on_disk: BTreeSet<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|entry| entry.unwrap().file_name().into_string().unwrap())
            .filter(|name| name.ends_with(".js"))
            .collect();
        let served: BTreeSet<String> = BROWSER_CLIENT
            .iter()
            .map(|&(name, _)| name.to_owned())
            .collect();
        assert_eq!(served, on_disk);
    }
}
