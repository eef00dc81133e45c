//! Checks the item `#[leak_check]` is on, and rewrites it: a test function
//! here, an inline module of tests in `module`.

use crate::args::{Args, Flavor, ModuleArgs, UnhandledPanic};
use crate::Errors;
use proc_macro2::{Delimiter, Group, Span, TokenStream};
use quote::{quote, quote_spanned, ToTokens, TokenStreamExt};
use syn::spanned::Spanned;
use syn::{AttrStyle, Attribute, Error, Expr, Item, ItemFn, Local, Pat, Result, Stmt};

/// What the function is, which decides the shape of the expansion.
enum Form<'a> {
    /// `fn`: checked after the body returns.
    Sync,
    /// `async fn` without a runtime attribute: gets a runtime of its own.
    OwnRuntime,
    /// `async fn` with `#[tokio::test]` below `#[leak_check]`, which
    /// `#[leak_check]` replaces: the function gets a runtime of its own, as in
    /// `OwnRuntime`, built from the arguments of both attributes.
    TokioTest(&'a Attribute),
    /// `async fn` with another `..::test` attribute below `#[leak_check]`,
    /// such as `#[actix_rt::test]`: that attribute builds the runtime, which
    /// `#[leak_check]` can't instrument.
    RuntimeAttr(&'a Attribute),
}

pub fn leak_check(args: TokenStream, item: Item) -> Result<TokenStream> {
    let mut errors = Errors::default();
    let args = Args::parse(args, &mut errors);
    let tokens = match item {
        Item::Fn(func) => {
            if already_checked(&func) {
                return Err(Error::new(
                    Span::call_site(),
                    "this test is already checked by the `#[leak_check]` on a module around it, \
                     which could not see this attribute because it is written through \
                     `cfg_attr` or under another name: write it as `#[leak_check(...)]`, \
                     and the module's attribute applies its arguments to this test",
                ));
            }
            if let Some(off) = &args.off {
                errors.push(Error::new_spanned(
                    off,
                    "`off` exempts a test from the `#[leak_check]` on a module around it, \
                     and this test is in no such module: to leave it unchecked, \
                     remove `#[leak_check(off)]`",
                ));
            }
            test(&func, args, &[], &mut errors)
        }
        Item::Mod(module) => crate::module::expand(module, args, &mut errors),
        _ => {
            let mut error = Error::new(
                Span::call_site(),
                "`#[leak_check]` goes on a test function, `fn` or `async fn`, \
                 or on an inline module of tests, `mod tests { .. }`",
            );
            if let Err(args_error) = errors.finish() {
                error.combine(args_error);
            }
            return Err(error);
        }
    };
    errors.finish()?;
    Ok(tokens)
}

/// Checks one test, whose own `#[leak_check]` gave `args` (and has been taken
/// off `func`), inside the `#[leak_check]` modules `modules`, outermost
/// first, and rewrites it. Problems go to `errors`; the tokens returned are
/// only meant to be used if there are none.
pub fn test(
    func: &ItemFn,
    mut args: Args,
    modules: &[ModuleArgs],
    errors: &mut Errors,
) -> TokenStream {
    let form = classify(func, errors);
    match form {
        Form::Sync => {
            for arg in args.runtime() {
                let msg = format!(
                    "`{}` configures the tokio runtime of an `async fn` test; this test is not async",
                    arg.path.to_token_stream(),
                );
                errors.push(Error::new_spanned(arg, msg));
            }
            args.inherit(modules, false);
        }
        Form::OwnRuntime => {
            args.inherit(modules, true);
            args.check_runtime(errors);
        }
        Form::TokioTest(attr) => {
            let tokio_args = Args::parse_tokio_test(attr, errors);
            args.merge_tokio_test(tokio_args, &path_string(attr), errors);
            args.inherit(modules, true);
            args.check_runtime(errors);
        }
        Form::RuntimeAttr(attr) => {
            let path = path_string(attr);
            for arg in args.runtime() {
                let msg = format!(
                    "the runtime here is the one `#[{path}]` builds, which `#[leak_check]` \
                     can't configure (it builds the runtime itself only in place of \
                     `#[tokio::test]`): give `#[{path}]` this argument instead, \
                     as in `#[{path}({})]`",
                    arg.to_token_stream(),
                );
                errors.push(Error::new_spanned(arg, msg));
            }
            args.inherit(modules, false);
        }
    }
    check_signature(func, errors);
    // Where a failed check panics: at the attribute on the test, or at the
    // test's name when the attribute is on its module, many lines above.
    let site = if modules.is_empty() {
        Span::call_site()
    } else {
        func.sig.ident.span()
    };
    generate(func, &form, &args, site)
}

/// Whether `#[leak_check]` has already rewritten this function, which then
/// defines `__leakcheck_body` inside: a module's `#[leak_check]` checked it
/// without seeing an attribute it could not recognise.
pub fn already_checked(func: &ItemFn) -> bool {
    func.block.stmts.iter().any(
        |stmt| matches!(stmt, Stmt::Item(Item::Fn(inner)) if inner.sig.ident == "__leakcheck_body"),
    )
}

fn classify<'a>(func: &'a ItemFn, errors: &mut Errors) -> Form<'a> {
    if let Some(dup) = func
        .attrs
        .iter()
        .find(|attr| last_segment_is(attr, "leak_check"))
    {
        errors.push(Error::new_spanned(dup, "duplicate `#[leak_check]`"));
    }
    let test_attrs: Vec<&Attribute> = func
        .attrs
        .iter()
        .filter(|attr| last_segment_is(attr, "test"))
        .collect();
    let tokio_test = test_attrs.iter().copied().find(|attr| is_tokio_test(attr));
    match (&func.sig.asyncness, tokio_test, test_attrs.first()) {
        (Some(_), Some(tokio_test), _) => {
            for other in test_attrs.iter().filter(|a| !std::ptr::eq(**a, tokio_test)) {
                let msg = format!(
                    "a second test attribute: `#[{}]` already makes this function a test; \
                     remove this one",
                    path_string(tokio_test),
                );
                errors.push(Error::new_spanned(other, msg));
            }
            Form::TokioTest(tokio_test)
        }
        (Some(_), None, Some(attr)) => Form::RuntimeAttr(attr),
        (Some(_), None, None) => Form::OwnRuntime,
        (None, _, _) => {
            if expanded_by_tokio(func) {
                errors.push(Error::new(
                    Span::call_site(),
                    "`#[leak_check]` must be above `#[tokio::test]`: below it, it would check \
                     after tokio's runtime is dropped, which cancels every task, \
                     so the check could never fail",
                ));
            }
            Form::Sync
        }
    }
}

/// Whether the attribute is `#[tokio::test]` or `#[::tokio::test]`, with or
/// without arguments. A renamed tokio (`#[my_tokio::test]`) can't be told
/// apart from another crate's attribute, so it is left in place.
fn is_tokio_test(attr: &Attribute) -> bool {
    let segments = &attr.path().segments;
    segments.len() == 2
        && segments[0].ident == "tokio"
        && segments[1].ident == "test"
        && segments.iter().all(|segment| segment.arguments.is_none())
}

pub fn path_string(attr: &Attribute) -> String {
    attr.path().to_token_stream().to_string().replace(' ', "")
}

pub fn last_segment_is(attr: &Attribute, name: &str) -> bool {
    attr.path()
        .segments
        .last()
        .is_some_and(|segment| segment.ident == name)
}

/// Whether `#[tokio::test]` (or `#[tokio::main]`) above `#[leak_check]` has
/// already turned the `async fn` into a sync one, which tokio-macros does by
/// starting the body with `let body = async { .. };`.
fn expanded_by_tokio(func: &ItemFn) -> bool {
    matches!(
        func.block.stmts.first(),
        Some(Stmt::Local(Local { pat: Pat::Ident(pat), init: Some(init), .. }))
            if pat.ident == "body" && matches!(*init.expr, Expr::Async(_))
    )
}

fn check_signature(func: &ItemFn, errors: &mut Errors) {
    let sig = &func.sig;
    if !sig.inputs.is_empty() {
        errors.push(Error::new_spanned(
            &sig.inputs,
            "a `#[leak_check]` test takes no arguments; set up what it needs in its body",
        ));
    }
    if !sig.generics.params.is_empty() {
        errors.push(Error::new_spanned(
            &sig.generics,
            "a `#[leak_check]` test can't be generic; \
             write a generic helper and call it from the test",
        ));
    }
    if let Some(where_clause) = &sig.generics.where_clause {
        errors.push(Error::new_spanned(
            where_clause,
            "a `#[leak_check]` test can't have a `where` clause",
        ));
    }
}

fn generate(func: &ItemFn, form: &Form, args: &Args, site: Span) -> TokenStream {
    // The `#[tokio::test]` that `#[leak_check]` replaces is dropped.
    let replaced = match form {
        Form::TokioTest(attr) => Some(*attr),
        _ => None,
    };
    let kept = || {
        func.attrs
            .iter()
            .filter(move |attr| !replaced.is_some_and(|r| std::ptr::eq(*attr, r)))
    };
    let (outer, inner): (Vec<_>, Vec<_>) =
        kept().partition(|attr| matches!(attr.style, AttrStyle::Outer));
    let vis = &func.vis;
    let output = &func.sig.output;
    let mut sig = func.sig.clone();
    // The user's block, braces and inner attributes included, as the body of
    // `__leakcheck_body` so that `return` and `?` keep their meaning and its
    // locals are dropped before the check.
    let mut body = TokenStream::new();
    func.block.brace_token.surround(&mut body, |tokens| {
        tokens.append_all(&inner);
        tokens.append_all(&func.block.stmts);
    });
    let guard = options(args);
    let private = quote!(::leakcheck::__private);
    let check_sync = call_at(
        site,
        quote!(::leakcheck::__private::check_sync),
        quote!(__leakcheck_guard),
    );
    let panic = call_at(
        site,
        quote!(::core::panic!),
        quote!("{}", __leakcheck_report),
    );

    // A `#[test]` (or another runtime's `..::test`) below `#[leak_check]` is
    // kept, and is the only one.
    let (test_attr, run_once) = if kept().any(|attr| last_segment_is(attr, "test")) {
        (TokenStream::new(), TokenStream::new())
    } else {
        (quote!(#[::core::prelude::v1::test]), run_once(func))
    };

    let block = match form {
        Form::Sync => quote! {
            #run_once
            fn __leakcheck_body() #output #body
            let __leakcheck_guard = #guard;
            let __leakcheck_value = __leakcheck_body();
            #check_sync;
            __leakcheck_value
        },
        Form::OwnRuntime | Form::TokioTest(_) => {
            sig.asyncness = None;
            let Runtime {
                tokio,
                new,
                settings,
                build,
            } = runtime(args);
            quote! {
                #run_once
                async fn __leakcheck_body() #output #body
                let mut __leakcheck_builder = #tokio::runtime::Builder::#new();
                __leakcheck_builder.enable_all() #settings;
                #private::instrument_runtime(&mut __leakcheck_builder);
                let __leakcheck_runtime = __leakcheck_builder
                    .#build
                    .expect("leakcheck: failed to build the tokio runtime");
                __leakcheck_runtime.block_on(async {
                    let __leakcheck_guard = #guard;
                    let __leakcheck_value = __leakcheck_body().await;
                    if let ::core::result::Result::Err(__leakcheck_report) =
                        #private::check_async(__leakcheck_guard).await
                    {
                        #panic;
                    }
                    __leakcheck_value
                })
            }
        }
        Form::RuntimeAttr(_) => quote! {
            async fn __leakcheck_body() #output #body
            let __leakcheck_guard = #guard;
            let __leakcheck_value = __leakcheck_body().await;
            if let ::core::result::Result::Err(__leakcheck_report) =
                #private::check_async(__leakcheck_guard).await
            {
                #panic;
            }
            __leakcheck_value
        },
    };

    quote! {
        #(#outer)*
        #test_attr
        #vis #sig {
            #block
        }
    }
}

/// `path(args)`, where a panic inside (through `#[track_caller]` or
/// `panic!`) is located at `site`. A panic's location is the outermost
/// macro call that its tokens come from, so the path and the parentheses
/// carry `site` itself; the arguments keep the expansion's spans, so that
/// the locals they name resolve as everywhere else in it.
fn call_at(site: Span, path: TokenStream, args: TokenStream) -> TokenStream {
    let path = path.into_iter().map(|mut token| {
        token.set_span(site);
        token
    });
    let mut args = Group::new(Delimiter::Parenthesis, args);
    args.set_span(site);
    quote!(#(#path)* #args)
}

/// `Options::new()...verify_none()`, which opens the guard.
fn options(args: &Args) -> TokenStream {
    let settle = args.settle_ms.iter().map(|ms| &ms.value);
    let names = &args.ignore_name;
    let locations = &args.ignore_location;
    let untracked = args.ignore_untracked_tasks.iter().map(|n| &n.value);
    quote! {
        ::leakcheck::Options::new()
            #(.settle(::core::time::Duration::from_millis(#settle)))*
            #(.ignore_name(#names))*
            #(.ignore_location(#locations))*
            #(.ignore_untracked_tasks(#untracked))*
            .verify_none()
    }
}

/// The runtime `#[tokio::test]` would build from the same arguments.
struct Runtime {
    /// The path tokio is reached under.
    tokio: TokenStream,
    /// The builder's constructor.
    new: TokenStream,
    /// The settings to chain after `enable_all()`.
    settings: TokenStream,
    /// The call that builds the runtime.
    build: TokenStream,
}

fn runtime(args: &Args) -> Runtime {
    let tokio = match &args.crate_path {
        Some(path) => path.value.to_token_stream(),
        None => quote!(::leakcheck::__private::tokio),
    };
    let flavor = args
        .flavor
        .as_ref()
        .map_or(Flavor::CurrentThread, |flavor| flavor.value);
    let (new, build) = match flavor {
        Flavor::CurrentThread => (quote!(new_current_thread), quote!(build())),
        Flavor::MultiThread => (quote!(new_multi_thread), quote!(build())),
        Flavor::Local => (
            quote!(new_current_thread),
            quote!(build_local(::core::default::Default::default())),
        ),
    };
    let mut settings = TokenStream::new();
    if let Some(workers) = &args.worker_threads {
        let workers = &workers.value;
        settings.extend(quote!(.worker_threads(#workers)));
    }
    if args
        .start_paused
        .as_ref()
        .is_some_and(|paused| paused.value.value)
    {
        settings.extend(quote!(.start_paused(true)));
    }
    if let Some(unhandled) = &args.unhandled_panic {
        // As `#[tokio::test]` does, whether or not `--cfg tokio_unstable` is
        // set: without it, tokio has neither the method nor the type, and the
        // compiler's error points at the argument.
        let behaviour = match unhandled.value {
            UnhandledPanic::Ignore => quote!(Ignore),
            UnhandledPanic::ShutdownRuntime => quote!(ShutdownRuntime),
        };
        let span = unhandled.meta.value.span();
        settings.extend(quote_spanned! {span=>
            .unhandled_panic(#tokio::runtime::UnhandledPanic::#behaviour)
        });
    }
    if let Some(name) = &args.name {
        let name = &name.value;
        settings.extend(quote!(.name(#name)));
    }
    Runtime {
        tokio,
        new,
        settings,
        build,
    }
}

/// A `#[test]` above `#[leak_check]` has already registered the function, and
/// leaves no trace in the tokens it passes on, so the `#[test]` that
/// `#[leak_check]` adds would register it a second time. Each registration
/// calls the same function, so the second call in a process reports it: it
/// panics, or for a `#[should_panic]` test returns, failing either way.
fn run_once(func: &ItemFn) -> TokenStream {
    let message = format!(
        "leakcheck: `{}` is registered as a test twice: `#[leak_check]` makes it a test, \
         and so does the `#[test]` above it; remove that `#[test]` \
         (or put it below `#[leak_check]`)",
        func.sig.ident,
    );
    let fail = if func
        .attrs
        .iter()
        .any(|attr| attr.path().is_ident("should_panic"))
    {
        quote! {
            ::std::eprintln!("{}", #message);
            return;
        }
    } else {
        quote!(::core::panic!("{}", #message);)
    };
    quote! {
        static __LEAKCHECK_RAN: ::core::sync::atomic::AtomicBool =
            ::core::sync::atomic::AtomicBool::new(false);
        if __LEAKCHECK_RAN.swap(true, ::core::sync::atomic::Ordering::Relaxed) {
            #fail
        }
    }
}
