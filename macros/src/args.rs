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
                ms.base10_parse::<u64>()?;
                set(&mut self.settle_ms, ms.clone(), &meta)
            }
            ("settle_ms", _) => Err(wrong_type("a whole number of milliseconds")),
            ("ignore_name", Some(Lit::Str(s))) => {
                self.ignore_name.push(s.clone());
                Ok(())
            }
            ("ignore_location", Some(Lit::Str(s))) => {
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
                if n.base10_parse::<usize>()? == 0 {
                    let msg = "a runtime needs at least 1 worker thread";
                    return Err(Error::new_spanned(n, msg));
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
