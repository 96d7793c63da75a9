//! The shape the runtime keeps: the wire contract (`src/wire/`) is what a client and a server
//! share, so it knows nothing of either, nor of sockets: no axum, tokio, hyper, reqwest or
//! tungstenite, and no path into the server, the client or the pub/sub.

use std::path::Path;

const FORBIDDEN: [&str; 8] = [
    "axum",
    "tokio",
    "hyper",
    "reqwest",
    "tungstenite",
    "crate::server",
    "crate::client",
    "crate::pubsub",
];

#[test]
fn the_wire_contract_depends_on_neither_end_nor_on_sockets() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/wire");
    let mut read = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "rs") {
            continue;
        }
        read += 1;
        let text = std::fs::read_to_string(&path).unwrap();
        for (n, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or_default();
            for name in FORBIDDEN {
                assert!(
                    !code.contains(name),
                    "{}:{}: the wire contract names `{name}`: {line}",
                    path.display(),
                    n + 1
                );
            }
        }
    }
    assert!(read >= 8, "only {read} files in {}", dir.display());
}

/// The runtime's modules form no import loop: a module never reaches, through the items it
/// names, back to itself. A parent that re-exports its children is a facade, not a kernel: a
/// child naming an item through it (`super::Shared`, `crate::client::Config`) is followed to the
/// file that defines the item, so only a child importing what its parent *defines* closes a
/// loop. Code under `#[cfg(test)]` is left out: tests may reach anywhere.
#[test]
fn the_runtime_has_no_import_loop() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let graph = imports::Graph::read(&src);
    assert!(
        graph.modules() > 40,
        "read only {} modules",
        graph.modules()
    );
    let loops = graph.loops();
    assert!(
        loops.is_empty(),
        "import loops between the runtime's modules (each line: modules that reach each other):\n{}",
        loops
            .iter()
            .map(|l| format!(
                "  {}\n    {}",
                l.join(" <-> "),
                graph.explain(l).join("\n    ")
            ))
            .collect::<Vec<_>>()
            .join("\n")
    );
}

/// The loop finder must see a loop: two modules written to name each other are caught, and a
/// facade that re-exports its child is not taken for one.
#[test]
fn the_loop_finder_sees_a_loop_and_lets_a_facade_be() {
    let dir = std::env::temp_dir().join(format!("omni-structure-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("a")).unwrap();
    std::fs::write(dir.join("lib.rs"), "mod a; mod b; mod c;").unwrap();
    std::fs::write(
        dir.join("a/mod.rs"),
        "mod inner; pub use self::inner::Thing; pub struct Kernel;",
    )
    .unwrap();
    // Reaches `Thing` through the facade: followed to `a::inner`, so `a` is not in a loop.
    std::fs::write(dir.join("a/inner.rs"), "pub struct Thing; use crate::c::C;").unwrap();
    std::fs::write(
        dir.join("c.rs"),
        "pub struct C; fn f() -> crate::a::Thing { todo!() }",
    )
    .unwrap();
    // `b` and the parent it is not a child of: b -> a (Kernel, defined there), a -> ... no.
    std::fs::write(dir.join("b.rs"), "use crate::a::Kernel;").unwrap();
    let graph = imports::Graph::read(&dir);
    assert_eq!(
        graph.loops(),
        vec![vec!["a::inner".to_owned(), "c".to_owned()]]
    );

    // A child that imports what its parent defines, while the parent uses the child: a loop.
    std::fs::write(dir.join("c.rs"), "pub struct C;").unwrap();
    std::fs::write(
        dir.join("a/inner.rs"),
        "pub struct Thing; fn f(_: super::Kernel) {}",
    )
    .unwrap();
    let graph = imports::Graph::read(&dir);
    assert_eq!(
        graph.loops(),
        vec![vec!["a".to_owned(), "a::inner".to_owned()]]
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

mod imports {
    //! A module graph of a crate's sources: a node per file, an edge for every path that names
    //! an item of another file, re-exports followed to where the item is defined.

    use std::collections::{BTreeMap, BTreeSet};
    use std::path::Path;

    use syn::visit::Visit;

    /// One module: the names it defines, the names it re-exports (and from where), and the
    /// paths its code names.
    #[derive(Default)]
    struct Module {
        defines: BTreeSet<String>,
        uses: BTreeMap<String, Vec<String>>,
        named: Vec<Vec<String>>,
    }

    pub struct Graph {
        modules: BTreeMap<Vec<String>, Module>,
    }

    impl Graph {
        pub fn read(src: &Path) -> Self {
            let mut modules = BTreeMap::new();
            read_dir(src, src, &mut modules);
            Self { modules }
        }

        pub fn modules(&self) -> usize {
            self.modules.len()
        }

        /// The module a path leads to: the deepest module it names, then through that
        /// module's re-exports while the next segment is one of them.
        fn resolve(&self, path: &[String], depth: usize) -> Option<Vec<String>> {
            let mut at = Vec::new();
            let mut rest = path;
            while let Some((first, tail)) = rest.split_first() {
                let mut next = at.clone();
                next.push(first.clone());
                if !self.modules.contains_key(&next) {
                    break;
                }
                at = next;
                rest = tail;
            }
            let module = self.modules.get(&at)?;
            if let Some(name) = rest.first()
                && !module.defines.contains(name)
                && let Some(target) = module.uses.get(name)
                && depth < 8
            {
                let mut path = target.clone();
                path.extend(rest[1..].iter().cloned());
                return self.resolve(&path, depth + 1);
            }
            Some(at)
        }

        /// For each module, the modules it names, each with the first path that named it.
        fn edges(&self) -> BTreeMap<&Vec<String>, BTreeMap<Vec<String>, String>> {
            self.modules
                .iter()
                .map(|(at, module)| {
                    let mut targets = BTreeMap::new();
                    for path in module.named.iter().chain(module.uses.values()) {
                        if let Some(to) = self.resolve(path, 0)
                            && to != *at
                            && !to.is_empty()
                        {
                            targets.entry(to).or_insert_with(|| path.join("::"));
                        }
                    }
                    (at, targets)
                })
                .collect()
        }

        /// Every set of modules that reach each other (strongly connected, more than one),
        /// each sorted, named `a::b`.
        pub fn loops(&self) -> Vec<Vec<String>> {
            let edges = self.edges();
            let reach = |from: &Vec<String>| {
                let mut seen = BTreeSet::new();
                let mut todo = vec![from.clone()];
                while let Some(at) = todo.pop() {
                    for to in edges.get(&at).into_iter().flat_map(BTreeMap::keys) {
                        if seen.insert(to.clone()) {
                            todo.push(to.clone());
                        }
                    }
                }
                seen
            };
            let reaches: BTreeMap<_, _> = edges.keys().map(|m| (*m, reach(m))).collect();
            let mut loops = BTreeSet::new();
            for (module, reached) in &reaches {
                let group: Vec<String> = reached
                    .iter()
                    .filter(|other| {
                        *other == *module || reaches.get(other).is_some_and(|r| r.contains(*module))
                    })
                    .map(|m| m.join("::"))
                    .collect();
                if group.len() > 1 {
                    loops.insert(group);
                }
            }
            loops.into_iter().collect()
        }

        /// The edges inside a loop found by [`Graph::loops`], as `from -> to (path)`, so a
        /// failure says which import to move.
        pub fn explain(&self, group: &[String]) -> Vec<String> {
            let edges = self.edges();
            let mut lines = Vec::new();
            for (from, targets) in &edges {
                let from = from.join("::");
                if !group.contains(&from) {
                    continue;
                }
                for (to, path) in targets {
                    let to = to.join("::");
                    if group.contains(&to) {
                        lines.push(format!("{from} -> {to} (crate::{path})"));
                    }
                }
            }
            lines
        }
    }

    fn read_dir(root: &Path, dir: &Path, modules: &mut BTreeMap<Vec<String>, Module>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                read_dir(root, &path, modules);
                continue;
            }
            if path.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            let relative = path.strip_prefix(root).unwrap().with_extension("");
            let mut name: Vec<String> = relative
                .iter()
                .map(|s| s.to_string_lossy().into_owned())
                .collect();
            if matches!(
                name.last().map(String::as_str),
                Some("mod" | "lib" | "main")
            ) {
                name.pop();
            }
            let text = std::fs::read_to_string(&path).unwrap();
            let file = syn::parse_file(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            let mut module = Module::default();
            let mut reader = Reader {
                at: &name,
                module: &mut module,
            };
            reader.visit_file(&file);
            modules.insert(name, module);
        }
    }

    struct Reader<'a> {
        at: &'a [String],
        module: &'a mut Module,
    }

    impl Reader<'_> {
        /// `crate::a::b`, `super::b`, `self::b` as a path from the crate root; other paths
        /// (std, dependencies, local names) are not the crate's.
        fn absolute(&self, segments: &[String]) -> Option<Vec<String>> {
            let mut at = self.at.to_vec();
            let mut rest = segments;
            match rest.first().map(String::as_str) {
                Some("crate") => {
                    at.clear();
                    rest = &rest[1..];
                }
                Some("self") => rest = &rest[1..],
                Some("super") => {
                    while rest.first().map(String::as_str) == Some("super") {
                        at.pop()?;
                        rest = &rest[1..];
                    }
                }
                _ => return None,
            }
            at.extend(rest.iter().cloned());
            Some(at)
        }

        fn use_tree(&mut self, prefix: &mut Vec<String>, tree: &syn::UseTree) {
            match tree {
                syn::UseTree::Path(p) => {
                    prefix.push(p.ident.to_string());
                    self.use_tree(prefix, &p.tree);
                    prefix.pop();
                }
                syn::UseTree::Name(n) => self.used(prefix, &n.ident.to_string(), None),
                syn::UseTree::Rename(r) => {
                    self.used(prefix, &r.ident.to_string(), Some(r.rename.to_string()));
                }
                syn::UseTree::Glob(_) => {
                    if let Some(path) = self.absolute(prefix) {
                        self.module.named.push(path);
                    }
                }
                syn::UseTree::Group(g) => {
                    for tree in &g.items {
                        self.use_tree(prefix, tree);
                    }
                }
            }
        }

        fn used(&mut self, prefix: &[String], name: &str, rename: Option<String>) {
            let mut full = prefix.to_vec();
            let alias = if name == "self" {
                prefix.last().cloned()
            } else {
                full.push(name.to_owned());
                Some(name.to_owned())
            };
            // `use self::inner::{self, Thing}` in `a`: `Thing` is reached as `a::Thing`
            // but lives in `a::inner`.
            if let (Some(path), Some(alias)) = (self.absolute(&full), rename.or(alias)) {
                self.module.uses.insert(alias, path);
            }
        }
    }

    fn is_test(attrs: &[syn::Attribute]) -> bool {
        attrs.iter().any(|a| {
            a.path().is_ident("cfg")
                && a.parse_args::<syn::Meta>()
                    .is_ok_and(|m| m.path().is_ident("test"))
        })
    }

    impl<'ast> Visit<'ast> for Reader<'_> {
        fn visit_item(&mut self, item: &'ast syn::Item) {
            let attrs = match item {
                syn::Item::Mod(m) => &m.attrs,
                syn::Item::Fn(f) => &f.attrs,
                syn::Item::Impl(i) => &i.attrs,
                syn::Item::Use(u) => &u.attrs,
                _ => &Vec::new(),
            };
            if is_test(attrs) {
                return;
            }
            let defined = match item {
                syn::Item::Struct(s) => Some(&s.ident),
                syn::Item::Enum(e) => Some(&e.ident),
                syn::Item::Fn(f) => Some(&f.sig.ident),
                syn::Item::Trait(t) => Some(&t.ident),
                syn::Item::Type(t) => Some(&t.ident),
                syn::Item::Const(c) => Some(&c.ident),
                syn::Item::Static(s) => Some(&s.ident),
                syn::Item::Union(u) => Some(&u.ident),
                syn::Item::Macro(m) => m.ident.as_ref(),
                syn::Item::Mod(m) if m.content.is_some() => Some(&m.ident),
                _ => None,
            };
            if let Some(ident) = defined {
                self.module.defines.insert(ident.to_string());
            }
            if let syn::Item::Use(u) = item {
                self.use_tree(&mut Vec::new(), &u.tree);
                return;
            }
            syn::visit::visit_item(self, item);
        }

        // `pub(super)` and `pub(in crate::x)` say who may see an item, not what it uses.
        fn visit_visibility(&mut self, _: &'ast syn::Visibility) {}

        fn visit_path(&mut self, path: &'ast syn::Path) {
            let segments: Vec<String> = path.segments.iter().map(|s| s.ident.to_string()).collect();
            if let Some(absolute) = self.absolute(&segments) {
                self.module.named.push(absolute);
            }
            syn::visit::visit_path(self, path);
        }
    }
}
