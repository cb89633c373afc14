//! File name → (path, method, build) for route files: every row of Nitro's naming table,
//! and the quirks taskyard fixes or refuses.

use std::path::Path;

use taskyard_build::{RouteEnv, route_from_file};

/// A row of the naming table: file, prefix, then the expected path, method, build and
/// parameters.
type Row<'a> = (&'a str, &'a str, &'a str, Option<String>, RouteEnv, &'a [&'a str]);

fn route(file: &str, prefix: &str) -> (String, Option<String>, RouteEnv, Vec<String>) {
    let spec = route_from_file(Path::new(file), prefix)
        .unwrap_or_else(|e| panic!("{file}: {e}"))
        .unwrap_or_else(|| panic!("{file} is not a route"));
    (spec.path, spec.method, spec.env, spec.params)
}

#[test]
fn file_names_become_routes_as_in_nitro() {
    use RouteEnv::{Any, Dev, Prod};
    let get = Some("GET".to_owned());
    let post = Some("POST".to_owned());
    let none: Option<String> = None;
    let rows: &[Row] = &[
        // Nitro's table (routes/ has no prefix; api/ has /api).
        ("index.rs", "", "/", none.clone(), Any, &[]),
        (
            "users/[id].post.rs",
            "",
            "/users/{id}",
            post.clone(),
            Any,
            &["id"],
        ),
        (
            "hello/[...name].rs",
            "",
            "/hello/{*name}",
            none.clone(),
            Any,
            &["name"],
        ),
        ("[...].rs", "", "/{*_}", none.clone(), Any, &["_"]),
        ("env/index.get.prod.rs", "", "/env", get.clone(), Prod, &[]),
        ("api/(admin)/users.rs", "", "/api/users", none.clone(), Any, &[]),
        ("og.png.rs", "", "/og.png", none.clone(), Any, &[]),
        // The api/ folder and its prefix.
        (
            "users/[id].get.rs",
            "/api",
            "/api/users/{id}",
            get.clone(),
            Any,
            &["id"],
        ),
        ("index.rs", "/api", "/api", none.clone(), Any, &[]),
        ("test.post.rs", "/api", "/api/test", post.clone(), Any, &[]),
        // Method before environment, several parameters across folders, nested groups.
        (
            "debug/[...path].get.dev.rs",
            "",
            "/debug/{*path}",
            get.clone(),
            Dev,
            &["path"],
        ),
        (
            "orgs/[org]/repos/[repo].rs",
            "",
            "/orgs/{org}/repos/{repo}",
            none.clone(),
            Any,
            &["org", "repo"],
        ),
        (
            "(site)/(blog)/posts/index.get.rs",
            "",
            "/posts",
            get.clone(),
            Any,
            &[],
        ),
        (
            "hello/[name].get.rs",
            "",
            "/hello/{name}",
            get.clone(),
            Any,
            &["name"],
        ),
        // Parameter names keep only [A-Za-z0-9_-].
        (
            "files/[file.name].rs",
            "",
            "/files/{file_name}",
            none.clone(),
            Any,
            &["file_name"],
        ),
        (
            "items/[item-id].delete.rs",
            "",
            "/items/{item-id}",
            Some("DELETE".to_owned()),
            Any,
            &["item-id"],
        ),
        // Only lowercase suffixes are methods or environments, as in Nitro.
        ("hello.GET.rs", "", "/hello.GET", none.clone(), Any, &[]),
        ("report.prod.rs", "", "/report", none.clone(), Prod, &[]),
        ("index.dev.rs", "", "/", none.clone(), Dev, &[]),
        // `index` only names its folder when it is the file.
        ("index/list.rs", "", "/index/list", none.clone(), Any, &[]),
    ];
    for (file, prefix, path, method, env, params) in rows {
        assert_eq!(
            route(file, prefix),
            (
                path.to_string(),
                method.clone(),
                *env,
                params.iter().map(|p| p.to_string()).collect()
            ),
            "{prefix} {file}"
        );
    }
}

#[test]
fn files_that_are_not_routes_are_ignored() {
    for file in ["notes.md", ".hidden.rs", "(group)/.draft.get.rs", "mod"] {
        assert_eq!(route_from_file(Path::new(file), ""), Ok(None), "{file}");
    }
}

#[test]
fn names_that_would_never_match_are_refused_with_the_reason() {
    let cases = [
        ("[a]-[b].rs", "one parameter per file or folder name"),
        ("pre[id].rs", "a parameter takes a whole segment"),
        ("[...rest]/edit.rs", "must be the last part of the route"),
        ("[].rs", "has no parameter name"),
        ("{id}.rs", "write parameters as `[name]`"),
    ];
    for (file, expected) in cases {
        let error = route_from_file(Path::new(file), "").expect_err(file);
        assert!(error.contains(expected), "{file}: {error}");
    }
}

fn file(shown: &str, relative: &str, prefix: &str) -> taskyard_build::RouteFile {
    taskyard_build::RouteFile {
        file: shown.to_owned(),
        spec: route_from_file(Path::new(relative), prefix)
            .expect("valid")
            .expect("a route"),
    }
}

#[test]
fn clashing_files_are_named_together_instead_of_one_silently_winning() {
    let files = [
        file("src/api/users.rs", "users.rs", "/api"),
        file("src/routes/api/users.rs", "api/users.rs", ""),
        file("src/routes/users/[id].get.rs", "users/[id].get.rs", ""),
        file("src/routes/users/[uid].post.rs", "users/[uid].post.rs", ""),
        file("src/routes/env.get.dev.rs", "env.get.dev.rs", ""),
        file("src/routes/env.get.prod.rs", "env.get.prod.rs", ""),
        file("src/routes/env.get.rs", "env.get.rs", ""),
        file("src/routes/ok.get.rs", "ok.get.rs", ""),
        file("src/routes/ok.rs", "ok.rs", ""),
    ];
    let found: Vec<String> = taskyard_build::route_conflicts(&files, true)
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        found,
        [
            "src/api/users.rs and src/routes/api/users.rs both declare * /api/users; rename or remove one of them",
            "src/routes/users/[id].get.rs and src/routes/users/[uid].post.rs declare the same path with different parameter names (/users/{id} and /users/{uid}); name them the same",
            "src/routes/env.get.dev.rs and src/routes/env.get.rs both declare GET /env (debug builds); rename or remove one of them",
        ]
    );
    // In a release build the `.dev` file is out and the `.prod` one clashes instead.
    let release = taskyard_build::route_conflicts(&files, false);
    assert!(
        release
            .iter()
            .any(|c| c.first == "src/routes/env.get.prod.rs" && c.second == "src/routes/env.get.rs"),
        "{release:?}"
    );
}
