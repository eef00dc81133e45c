//! The arguments of `#[leak_check(...)]`.

use crate::Errors;
use proc_macro2::TokenStream;
use quote::ToTokens;
use std::cell::Cell;
use syn::parse::Parser;
use syn::punctuated::Punctuated;
use syn::{
    Attribute, Error, Expr, Lit, LitBool, LitInt, LitStr, Meta, MetaNameValue, Path, Result, Token,
};

/// Every argument of `#[leak_check]`, with an example of its use for error
/// messages.
const ACCEPTED: &[(&str, &str)] = &[
    ("settle_ms", "settle_ms = 200"),
    ("ignore_name", "ignore_name = \"task-name\""),
    ("ignore_location", "ignore_location = \"src/pool.rs:88\""),
    ("ignore_untracked_tasks", "ignore_untracked_tasks = 1"),
    ("flavor", "flavor = \"multi_thread\""),
    ("worker_threads", "worker_threads = 2"),
    ("start_paused", "start_paused = true"),
    ("off", "off"),
];

/// Every argument of `#[tokio::test]` (tokio-macros 2.7) that `#[leak_check]`
/// passes on to the runtime it builds in its place. Any other is an error: an
/// argument tokio adds later must not be dropped without a word.
const TOKIO_TEST_ACCEPTED: &[(&str, &str)] = &[
    ("flavor", "flavor = \"multi_thread\""),
    ("worker_threads", "worker_threads = 2"),
    ("start_paused", "start_paused = true"),
    ("crate", "crate = \"tokio\""),
    ("unhandled_panic", "unhandled_panic = \"shutdown_runtime\""),
    ("name", "name = \"my-runtime\""),
];

#[derive(Default)]
pub struct Args {
    pub settle_ms: Option<Arg<LitInt>>,
    pub ignore_name: Vec<LitStr>,
    pub ignore_location: Vec<LitStr>,
    pub ignore_untracked_tasks: Option<Arg<LitInt>>,
    pub flavor: Option<Arg<Flavor>>,
    pub worker_threads: Option<Arg<LitInt>>,
    pub start_paused: Option<Arg<LitBool>>,
    /// From `#[tokio::test]` only: the path tokio is reached under.
    pub crate_path: Option<Arg<Path>>,
    /// From `#[tokio::test]` only; needs `--cfg tokio_unstable`.
    pub unhandled_panic: Option<Arg<UnhandledPanic>>,
    /// From `#[tokio::test]` only: the runtime's name.
    pub name: Option<Arg<LitStr>>,
    /// `off`: exempts a test, or a nested module of tests, from the
    /// `#[leak_check]` of a module around it.
    pub off: Option<Path>,
    /// Whether `flavor` came from a module's `#[leak_check]`, for errors.
    inherited_flavor: bool,
}

/// An argument given at most once, with the whole `name = value` for error
/// spans.
#[derive(Clone)]
pub struct Arg<T> {
    pub value: T,
    pub meta: MetaNameValue,
}

#[derive(Clone, Copy, PartialEq)]
pub enum Flavor {
    CurrentThread,
    MultiThread,
    /// tokio's `LocalRuntime`: a current-thread runtime built with
    /// `build_local`, on which `tokio::task::spawn_local` works.
    Local,
}

#[derive(Clone, Copy)]
pub enum UnhandledPanic {
    Ignore,
    ShutdownRuntime,
}

impl Args {
    /// Parses the arguments of `#[leak_check(...)]`, adding every problem it
    /// finds to `errors`.
    pub fn parse(tokens: TokenStream, errors: &mut Errors) -> Self {
        let mut args = Self::default();
        args.parse_into(tokens, ACCEPTED, None, errors);
        if let Some(off) = &args.off {
            if args.given() {
                errors.push(Error::new_spanned(
                    off,
                    "`off` leaves the test unchecked, so it takes no other argument: \
                     write `#[leak_check(off)]` alone",
                ));
            }
        }
        args
    }

    /// Parses the arguments of an attribute `#[leak_check]`, `#[leak_check()]`
    /// or `#[leak_check(...)]` found on an item inside a module.
    pub fn parse_attr(attr: &Attribute, errors: &mut Errors) -> Self {
        match &attr.meta {
            Meta::Path(_) => Self::default(),
            Meta::List(list) => Self::parse(list.tokens.clone(), errors),
            Meta::NameValue(meta) => {
                errors.push(Error::new_spanned(
                    meta,
                    "expected `#[leak_check]` or `#[leak_check(...)]`",
                ));
                Self::default()
            }
        }
    }

    /// Whether any argument but `off` was given.
    fn given(&self) -> bool {
        self.settle_ms.is_some()
            || !self.ignore_name.is_empty()
            || !self.ignore_location.is_empty()
            || self.ignore_untracked_tasks.is_some()
            || self.flavor.is_some()
            || self.worker_threads.is_some()
            || self.start_paused.is_some()
            || self.crate_path.is_some()
            || self.unhandled_panic.is_some()
            || self.name.is_some()
    }

    /// Parses the arguments of the `#[tokio::test(...)]` that `#[leak_check]`
    /// replaces.
    pub fn parse_tokio_test(attr: &Attribute, errors: &mut Errors) -> Self {
        let mut args = Self::default();
        let path = attr.path().to_token_stream().to_string().replace(' ', "");
        match &attr.meta {
            Meta::Path(_) => {}
            Meta::List(list) => {
                args.parse_into(
                    list.tokens.clone(),
                    TOKIO_TEST_ACCEPTED,
                    Some(&path),
                    errors,
                );
            }
            Meta::NameValue(meta) => errors.push(Error::new_spanned(
                meta,
                format!("expected `#[{path}]` or `#[{path}(...)]`"),
            )),
        }
        args
    }

    fn parse_into(
        &mut self,
        tokens: TokenStream,
        accepted: &[(&str, &str)],
        tokio_test: Option<&str>,
        errors: &mut Errors,
    ) {
        match Punctuated::<Meta, Token![,]>::parse_terminated.parse2(tokens) {
            Ok(metas) => {
                for meta in metas {
                    self.add(meta, accepted, tokio_test)
                        .unwrap_or_else(|error| errors.push(error));
                }
            }
            Err(error) => errors.push(error),
        }
    }

    /// Adds one argument; `tokio_test` is the path of the `#[tokio::test]`
    /// it was given to, if it was.
    fn add(
        &mut self,
        meta: Meta,
        accepted: &[(&str, &str)],
        tokio_test: Option<&str>,
    ) -> Result<()> {
        let path = meta.path();
        let Some(&(name, example)) = accepted.iter().find(|(name, _)| path.is_ident(name)) else {
            let names: Vec<_> = accepted
                .iter()
                .map(|(name, _)| format!("`{name}`"))
                .collect();
            let path = path.to_token_stream().to_string().replace(' ', "");
            let msg = match tokio_test {
                None => format!(
                    "unknown argument `{path}`, expected one of {}",
                    names.join(", "),
                ),
                Some(attr) if ACCEPTED.iter().any(|(name, _)| *name == path) => format!(
                    "`{path}` is an argument of `#[leak_check]`, not of `#[{attr}]`: \
                     give it to `#[leak_check(...)]`"
                ),
                Some(attr) => format!(
                    "`#[leak_check]` builds the runtime in place of `#[{attr}]` and does not know \
                     how to pass on its argument `{path}`; it accepts {}",
                    names.join(", "),
                ),
            };
            return Err(Error::new_spanned(meta.path(), msg));
        };
        if name == "off" {
            let Meta::Path(path) = meta else {
                return Err(Error::new_spanned(
                    meta,
                    "`off` takes no value: write `#[leak_check(off)]`",
                ));
            };
            if self.off.is_some() {
                return Err(Error::new_spanned(path, "duplicate `off` argument"));
            }
            self.off = Some(path);
            return Ok(());
        }
        let Meta::NameValue(meta) = meta else {
            return Err(Error::new_spanned(meta, format!("expected `{example}`")));
        };
        let wrong_type = |what: &str| {
            Error::new_spanned(&meta.value, format!("expected {what}, like `{example}`"))
        };
        match (name, lit(&meta.value)) {
            ("settle_ms", Some(Lit::Int(ms))) => {
                match ms.base10_parse::<u64>() {
                    Ok(value) if value <= MAX_SETTLE_MS => {}
                    _ => {
                        let msg = format!(
                            "`settle_ms` takes a whole number of milliseconds from 0 to {MAX_SETTLE_MS}, \
                             like `{example}`"
                        );
                        return Err(Error::new_spanned(ms, msg));
                    }
                }
                set(&mut self.settle_ms, ms.clone(), &meta)
            }
            ("settle_ms", _) => Err(wrong_type("a whole number of milliseconds")),
            ("ignore_name", Some(Lit::Str(s))) => {
                if matches!(s.value().as_str(), "" | "*") {
                    let msg = "this would match no name or every name: \
                               give a task or thread name, or a prefix followed by `*`";
                    return Err(Error::new_spanned(s, msg));
                }
                self.ignore_name.push(s.clone());
                Ok(())
            }
            ("ignore_location", Some(Lit::Str(s))) => {
                if let Some(problem) = location_problem(&s.value()) {
                    let msg = format!(
                        "{problem}: expected `file`, `file:line` or `file:line:col`, \
                         like `{example}`"
                    );
                    return Err(Error::new_spanned(s, msg));
                }
                self.ignore_location.push(s.clone());
                Ok(())
            }
            ("flavor", Some(Lit::Str(s))) => {
                let value = match s.value().as_str() {
                    "current_thread" => Flavor::CurrentThread,
                    "multi_thread" => Flavor::MultiThread,
                    "local" => Flavor::Local,
                    _ => {
                        let msg = "unknown flavor, expected \"current_thread\", \"multi_thread\" \
                                   or \"local\"";
                        return Err(Error::new_spanned(s, msg));
                    }
                };
                set(&mut self.flavor, value, &meta)
            }
            ("crate", Some(Lit::Str(s))) => {
                let Ok(path) = s.parse::<Path>() else {
                    let msg = format!("expected the path tokio is reached under, like `{example}`");
                    return Err(Error::new_spanned(s, msg));
                };
                set(&mut self.crate_path, path, &meta)
            }
            ("unhandled_panic", Some(Lit::Str(s))) => {
                let value = match s.value().as_str() {
                    "ignore" => UnhandledPanic::Ignore,
                    "shutdown_runtime" => UnhandledPanic::ShutdownRuntime,
                    _ => {
                        let msg = "unknown behaviour, expected \"ignore\" or \"shutdown_runtime\"";
                        return Err(Error::new_spanned(s, msg));
                    }
                };
                set(&mut self.unhandled_panic, value, &meta)
            }
            ("name", Some(Lit::Str(s))) => {
                if s.value().trim().is_empty() {
                    return Err(Error::new_spanned(s, "a runtime's name can't be empty"));
                }
                set(&mut self.name, s.clone(), &meta)
            }
            (
                "ignore_name" | "ignore_location" | "flavor" | "crate" | "unhandled_panic" | "name",
                _,
            ) => Err(wrong_type("a string")),
            ("worker_threads", Some(Lit::Int(n))) => {
                match n.base10_parse::<usize>() {
                    Ok(0) => {
                        let msg = "a runtime needs at least 1 worker thread";
                        return Err(Error::new_spanned(n, msg));
                    }
                    Ok(value) if value <= MAX_WORKER_THREADS => {}
                    _ => {
                        let msg = format!(
                            "`worker_threads` takes a whole number from 1 to {MAX_WORKER_THREADS}, \
                             like `{example}`"
                        );
                        return Err(Error::new_spanned(n, msg));
                    }
                }
                set(&mut self.worker_threads, n.clone(), &meta)
            }
            ("worker_threads", _) => Err(wrong_type("a whole number")),
            ("ignore_untracked_tasks", Some(Lit::Int(n))) => {
                if n.base10_parse::<usize>().is_err() {
                    let msg = format!("expected a whole number of tasks, like `{example}`");
                    return Err(Error::new_spanned(n, msg));
                }
                set(&mut self.ignore_untracked_tasks, n.clone(), &meta)
            }
            ("ignore_untracked_tasks", _) => Err(wrong_type("a whole number of tasks")),
            ("start_paused", Some(Lit::Bool(b))) => set(&mut self.start_paused, b.clone(), &meta),
            ("start_paused", _) => Err(wrong_type("`true` or `false`")),
            _ => unreachable!("the accepted lists hold only the arguments matched here"),
        }
    }

    /// Takes the runtime arguments of the `#[tokio::test]` that
    /// `#[leak_check]` replaces. An argument may be given in either place,
    /// but not in both.
    pub fn merge_tokio_test(&mut self, tokio: Self, attr: &str, errors: &mut Errors) {
        fn take<T>(
            mine: &mut Option<Arg<T>>,
            theirs: Option<Arg<T>>,
            attr: &str,
            errors: &mut Errors,
        ) {
            let Some(theirs) = theirs else { return };
            match mine {
                Some(mine) => {
                    let name = theirs.meta.path.to_token_stream();
                    let msg = format!(
                        "`{name}` is given both here and to `#[leak_check]`: \
                         `#[leak_check]` builds the runtime from the arguments of both \
                         attributes, so give each one once, in either"
                    );
                    let mut error = Error::new_spanned(&theirs.meta, msg);
                    error.combine(Error::new_spanned(
                        &mine.meta,
                        format!("`{name}` is also given to `#[{attr}]` below"),
                    ));
                    errors.push(error);
                }
                None => *mine = Some(theirs),
            }
        }
        take(&mut self.flavor, tokio.flavor, attr, errors);
        take(&mut self.worker_threads, tokio.worker_threads, attr, errors);
        take(&mut self.start_paused, tokio.start_paused, attr, errors);
        take(&mut self.crate_path, tokio.crate_path, attr, errors);
        take(
            &mut self.unhandled_panic,
            tokio.unhandled_panic,
            attr,
            errors,
        );
        take(&mut self.name, tokio.name, attr, errors);
    }

    /// The runtime arguments that were given, as `name = value`.
    pub fn runtime(&self) -> impl Iterator<Item = &MetaNameValue> {
        let flavor = self.flavor.as_ref().map(|a| &a.meta);
        let workers = self.worker_threads.as_ref().map(|a| &a.meta);
        let paused = self.start_paused.as_ref().map(|a| &a.meta);
        flavor.into_iter().chain(workers).chain(paused)
    }

    /// Checks that the runtime arguments fit together.
    pub fn check_runtime(&self, errors: &mut Errors) {
        let flavor = self
            .flavor
            .as_ref()
            .map_or(Flavor::CurrentThread, |f| f.value);
        if let (Flavor::CurrentThread | Flavor::Local, Some(workers)) =
            (flavor, &self.worker_threads)
        {
            errors.push(Error::new_spanned(
                &workers.meta,
                "`worker_threads` needs the multi-thread runtime: add `flavor = \"multi_thread\"`",
            ));
        }
        let paused = self
            .start_paused
            .as_ref()
            .filter(|paused| paused.value.value);
        // How to fix a setting the multi-thread flavor does not support.
        let fix = |name: &str| {
            if self.inherited_flavor {
                format!(
                    "this test gets `flavor = \"multi_thread\"` from the `#[leak_check]` \
                     of its module: give it `flavor = \"current_thread\"` or remove `{name}`"
                )
            } else {
                format!("remove `flavor = \"multi_thread\"` or `{name}`")
            }
        };
        if let (Flavor::MultiThread, Some(paused)) = (flavor, paused) {
            let msg = format!(
                "tokio can pause time only on the current-thread runtime: {}",
                fix("start_paused"),
            );
            errors.push(Error::new_spanned(&paused.meta, msg));
        }
        if let (Flavor::MultiThread, Some(unhandled)) = (flavor, &self.unhandled_panic) {
            let msg = format!(
                "tokio supports `unhandled_panic` only on the current-thread runtime: {}",
                fix("unhandled_panic"),
            );
            errors.push(Error::new_spanned(&unhandled.meta, msg));
        }
    }
}

/// The arguments of a `#[leak_check]` on a module: defaults for every test
/// inside it, in nested modules too.
pub struct ModuleArgs {
    pub args: Args,
    /// Which runtime arguments some test took: `flavor`, `worker_threads`,
    /// `start_paused`. One that none took is an error.
    used: [Cell<bool>; 3],
}

impl ModuleArgs {
    pub fn new(args: Args) -> Self {
        Self {
            args,
            used: Default::default(),
        }
    }

    /// Whether this module's attribute is `#[leak_check(off)]`.
    pub fn is_off(&self) -> bool {
        self.args.off.is_some()
    }

    /// Reports each runtime argument of this module that no test took.
    pub fn check_used(&self, errors: &mut Errors) {
        let fields = [
            self.args.flavor.as_ref().map(|a| (&a.meta, "")),
            self.args.worker_threads.as_ref().map(|a| {
                (
                    &a.meta,
                    "; it goes only to tests whose runtime is multi-thread",
                )
            }),
            self.args.start_paused.as_ref().map(|a| {
                (
                    &a.meta,
                    "; it goes only to tests whose runtime is current-thread or local",
                )
            }),
        ];
        for (field, used) in fields.iter().zip(&self.used) {
            let Some((meta, only)) = field else { continue };
            if used.get() {
                continue;
            }
            let msg = format!(
                "`{}` on this module applies to none of its tests: it is a default for the \
                 tokio runtime `#[leak_check]` builds for an `async fn` test or in place of \
                 `#[tokio::test]`, and a test that sets it keeps its own{only}",
                meta.path.to_token_stream(),
            );
            errors.push(Error::new_spanned(meta, msg));
        }
    }
}

impl Args {
    /// Fills in what this test's own attributes leave unset from the
    /// modules around it (`modules`, outermost first): a value from the
    /// nearest module that gives one, and the `ignore_*` lists of every
    /// module added to the test's own. `builds_runtime` says whether
    /// `#[leak_check]` builds the test's runtime; only then do the runtime
    /// arguments apply, each where it fits the test's flavor.
    pub fn inherit(&mut self, modules: &[ModuleArgs], builds_runtime: bool) {
        // The value the nearest module gives, and that module.
        fn nearest<T: Clone>(
            modules: &[ModuleArgs],
            field: impl Fn(&Args) -> &Option<Arg<T>>,
        ) -> Option<(Arg<T>, &ModuleArgs)> {
            modules
                .iter()
                .rev()
                .find_map(|m| field(&m.args).clone().map(|arg| (arg, m)))
        }
        // A runtime argument: taken only if the test has none, and marked used.
        fn take<T: Clone>(
            mine: &mut Option<Arg<T>>,
            modules: &[ModuleArgs],
            field: impl Fn(&Args) -> &Option<Arg<T>>,
            used: usize,
        ) {
            if mine.is_none() {
                if let Some((arg, module)) = nearest(modules, field) {
                    *mine = Some(arg);
                    module.used[used].set(true);
                }
            }
        }
        if self.settle_ms.is_none() {
            self.settle_ms = nearest(modules, |a| &a.settle_ms).map(|(arg, _)| arg);
        }
        if self.ignore_untracked_tasks.is_none() {
            self.ignore_untracked_tasks =
                nearest(modules, |a| &a.ignore_untracked_tasks).map(|(arg, _)| arg);
        }
        let outer = |list: fn(&Args) -> &Vec<LitStr>| -> Vec<LitStr> {
            modules
                .iter()
                .flat_map(|m| list(&m.args))
                .cloned()
                .collect()
        };
        let names = outer(|a| &a.ignore_name);
        self.ignore_name.splice(0..0, names);
        let locations = outer(|a| &a.ignore_location);
        self.ignore_location.splice(0..0, locations);
        if !builds_runtime {
            return;
        }
        self.inherited_flavor = self.flavor.is_none();
        take(&mut self.flavor, modules, |a| &a.flavor, 0);
        self.inherited_flavor &= self.flavor.is_some();
        let flavor = self
            .flavor
            .as_ref()
            .map_or(Flavor::CurrentThread, |f| f.value);
        // A default that doesn't fit the test's flavor is not an error: the
        // module's other tests may need it.
        if flavor == Flavor::MultiThread {
            take(&mut self.worker_threads, modules, |a| &a.worker_threads, 1);
        } else {
            take(&mut self.start_paused, modules, |a| &a.start_paused, 2);
        }
    }
}

/// The largest `settle_ms`: ten minutes, as for `LEAKCHECK_SETTLE_MS`.
const MAX_SETTLE_MS: u64 = 600_000;
/// The largest `worker_threads` accepted: far beyond any test's needs, far
/// below what would overflow tokio's arithmetic.
const MAX_WORKER_THREADS: usize = 1024;

/// What is wrong with an `ignore_location` pattern, if anything: the same
/// rules `Options::ignore_location` applies when the test runs.
fn location_problem(pattern: &str) -> Option<&'static str> {
    let numeric = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let mut parts: Vec<&str> = pattern.rsplitn(3, ':').collect();
    parts.reverse();
    let (file, numbers): (String, Vec<&str>) = match parts.as_slice() {
        [file, line, column] if numeric(line) && numeric(column) => {
            ((*file).to_owned(), vec![line, column])
        }
        [head @ .., line] if numeric(line) => (head.join(":"), vec![line]),
        _ => (pattern.to_owned(), Vec::new()),
    };
    if file.is_empty() {
        return Some("the file part is empty");
    }
    if numbers
        .iter()
        .any(|n| n.parse::<u32>().map_or(true, |n| n == 0))
    {
        return Some("a line or column must be a number from 1 to 4294967295");
    }
    None
}

/// The literal in `name = <literal>`, looking through the invisible groups
/// that `macro_rules!` wraps around its fragments.
fn lit(mut expr: &Expr) -> Option<&Lit> {
    while let Expr::Group(group) = expr {
        expr = &group.expr;
    }
    match expr {
        Expr::Lit(lit) => Some(&lit.lit),
        _ => None,
    }
}

/// Stores the value of an argument that may be given only once.
fn set<T>(slot: &mut Option<Arg<T>>, value: T, meta: &MetaNameValue) -> Result<()> {
    if slot.is_some() {
        let name = meta.path.to_token_stream();
        return Err(Error::new_spanned(
            meta,
            format!("duplicate `{name}` argument"),
        ));
    }
    *slot = Some(Arg {
        value,
        meta: meta.clone(),
    });
    Ok(())
}
