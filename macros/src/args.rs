//! The arguments of `#[leak_check(...)]`.

use crate::Errors;
use proc_macro2::TokenStream;
use quote::ToTokens;
use syn::parse::Parser;
use syn::punctuated::Punctuated;
use syn::{Error, Expr, Lit, LitBool, LitInt, LitStr, Meta, MetaNameValue, Result, Token};

/// Every argument, with an example of its use for error messages.
const ACCEPTED: &[(&str, &str)] = &[
    ("settle_ms", "settle_ms = 200"),
    ("ignore_name", "ignore_name = \"task-name\""),
    ("ignore_location", "ignore_location = \"src/pool.rs:88\""),
    ("flavor", "flavor = \"multi_thread\""),
    ("worker_threads", "worker_threads = 2"),
    ("start_paused", "start_paused = true"),
];

#[derive(Default)]
pub struct Args {
    pub settle_ms: Option<Arg<LitInt>>,
    pub ignore_name: Vec<LitStr>,
    pub ignore_location: Vec<LitStr>,
    pub flavor: Option<Arg<Flavor>>,
    pub worker_threads: Option<Arg<LitInt>>,
    pub start_paused: Option<Arg<LitBool>>,
}

/// An argument given at most once, with the whole `name = value` for error
/// spans.
pub struct Arg<T> {
    pub value: T,
    pub meta: MetaNameValue,
}

#[derive(Clone, Copy)]
pub enum Flavor {
    CurrentThread,
    MultiThread,
}

impl Args {
    /// Parses what it can, adding every problem it finds to `errors`.
    pub fn parse(tokens: TokenStream, errors: &mut Errors) -> Self {
        let mut args = Self::default();
        match Punctuated::<Meta, Token![,]>::parse_terminated.parse2(tokens) {
            Ok(metas) => {
                for meta in metas {
                    args.add(meta).unwrap_or_else(|error| errors.push(error));
                }
            }
            Err(error) => errors.push(error),
        }
        args
    }

    fn add(&mut self, meta: Meta) -> Result<()> {
        let path = meta.path();
        let Some(&(name, example)) = ACCEPTED.iter().find(|(name, _)| path.is_ident(name)) else {
            let accepted: Vec<_> = ACCEPTED
                .iter()
                .map(|(name, _)| format!("`{name}`"))
                .collect();
            let msg = format!(
                "unknown argument `{}`, expected one of {}",
                path.to_token_stream().to_string().replace(' ', ""),
                accepted.join(", "),
            );
            return Err(Error::new_spanned(path, msg));
        };
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
                    _ => {
                        let msg = "unknown flavor, expected \"current_thread\" or \"multi_thread\"";
                        return Err(Error::new_spanned(s, msg));
                    }
                };
                set(&mut self.flavor, value, &meta)
            }
            ("ignore_name" | "ignore_location" | "flavor", _) => Err(wrong_type("a string")),
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
            ("start_paused", Some(Lit::Bool(b))) => set(&mut self.start_paused, b.clone(), &meta),
            ("start_paused", _) => Err(wrong_type("`true` or `false`")),
            _ => unreachable!("`ACCEPTED` lists only the arguments matched here"),
        }
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
        if let (Flavor::CurrentThread, Some(workers)) = (flavor, &self.worker_threads) {
            errors.push(Error::new_spanned(
                &workers.meta,
                "`worker_threads` needs the multi-thread runtime: add `flavor = \"multi_thread\"`",
            ));
        }
        let paused = self
            .start_paused
            .as_ref()
            .filter(|paused| paused.value.value);
        if let (Flavor::MultiThread, Some(paused)) = (flavor, paused) {
            errors.push(Error::new_spanned(
                &paused.meta,
                "tokio can pause time only on the current-thread runtime: \
                 remove `flavor = \"multi_thread\"` or `start_paused`",
            ));
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
