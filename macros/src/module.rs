//! `#[leak_check]` on an inline module: every test inside it, in nested
//! modules too, is rewritten as if it had a `#[leak_check]` of its own, with
//! the module's arguments as defaults. Attribute macros expand from the
//! outside in, so the module's attribute sees the tests before any attribute
//! on them has run: it takes each `#[leak_check]` it finds inside off its
//! item and handles it itself, so that no test is checked twice.

use crate::args::{Args, ModuleArgs};
use crate::expand::{self, already_checked, last_segment_is, path_string};
use crate::Errors;
use proc_macro2::{Span, TokenStream};
use quote::{quote, quote_spanned, ToTokens};
use syn::spanned::Spanned;
use syn::{AttrStyle, Attribute, Error, Item, ItemFn, ItemMod, Path};

/// Rewrites the tests of the module that `#[leak_check(args)]` is on.
pub fn expand(mut module: ItemMod, args: Args, errors: &mut Errors) -> TokenStream {
    if let Some(off) = &args.off {
        errors.push(Error::new_spanned(
            off,
            "`off` exempts a test or a nested module from the `#[leak_check]` on a module \
             around it, and this module is in no such module: to leave its tests unchecked, \
             remove `#[leak_check(off)]`",
        ));
    }
    if let Some(dup) = module.attrs.iter().find(|attr| is_leak_check(attr)) {
        errors.push(Error::new_spanned(dup, "duplicate `#[leak_check]`"));
    }
    let Some((_, items)) = &mut module.content else {
        errors.push(Error::new(Span::call_site(), file_module(&module.ident)));
        return TokenStream::new();
    };
    let mut walk = Walk {
        modules: vec![ModuleArgs::new(args)],
        errors,
        already_checked: false,
    };
    let tests = walk.items(items);
    if walk.already_checked {
        walk.errors.push(Error::new(
            Span::call_site(),
            "this module's tests are already checked by the `#[leak_check]` on a module \
             around it, which could not see this attribute because it is written through \
             `cfg_attr` or under another name: write it as `#[leak_check(...)]`, and the \
             outer module's attribute applies its arguments to the tests in here",
        ));
    }
    if let Some(this) = walk.modules.pop() {
        finish(&this, tests, None, walk.errors);
    }
    module.into_token_stream()
}

/// What a function inside a checked module is.
enum Outcome {
    /// No test attribute and no `#[leak_check]`: a helper, left as it is.
    NotATest,
    /// A test that `#[leak_check(off)]` exempts, left as it is but for that
    /// attribute.
    Exempt,
    /// A test, rewritten.
    Checked(TokenStream),
}

struct Walk<'e> {
    /// The arguments of every `#[leak_check]` module around the items being
    /// walked, outermost first.
    modules: Vec<ModuleArgs>,
    errors: &'e mut Errors,
    /// Whether a test had already been rewritten by another `#[leak_check]`.
    already_checked: bool,
}

impl Walk<'_> {
    /// Rewrites the tests among `items`, and returns how many there are,
    /// exempt ones included.
    fn items(&mut self, items: &mut Vec<Item>) -> usize {
        let mut tests = 0;
        let mut taken = Vec::new();
        for item in items.iter_mut() {
            match item {
                Item::Fn(func) => match self.function(func, &mut taken) {
                    Outcome::NotATest => {}
                    Outcome::Exempt => tests += 1,
                    Outcome::Checked(tokens) => {
                        *item = Item::Verbatim(tokens);
                        tests += 1;
                    }
                },
                Item::Mod(module) => tests += self.module(module, &mut taken),
                _ => {}
            }
        }
        // The paths of the attributes taken off items here still name
        // something: an import of `leak_check` is used, and a path that
        // names nothing is an error, as it would be without this module's
        // attribute.
        let mut seen = Vec::new();
        for path in taken {
            let key = path.to_token_stream().to_string();
            if !seen.contains(&key) {
                seen.push(key);
                let span = path.span();
                items.push(Item::Verbatim(quote_spanned! {span=>
                    #[allow(unused_imports)]
                    use #path as _;
                }));
            }
        }
        tests
    }

    /// Rewrites `func` if it is a test, adding the path of the
    /// `#[leak_check]` it takes off it to `taken`.
    fn function(&mut self, func: &mut ItemFn, taken: &mut Vec<Path>) -> Outcome {
        let own = func.attrs.iter().position(is_leak_check);
        let test_attr = func.attrs.iter().position(|attr| {
            matches!(attr.style, AttrStyle::Outer) && last_segment_is(attr, "test")
        });
        if own.is_none() && test_attr.is_none() {
            return Outcome::NotATest;
        }
        if already_checked(func) {
            self.already_checked = true;
            return Outcome::Exempt;
        }
        let args = match own {
            Some(own) => {
                let attr = func.attrs.remove(own);
                taken.push(attr.path().clone());
                if let Some(test_attr) = test_attr.filter(|test_attr| *test_attr < own) {
                    let path = path_string(&func.attrs[test_attr]);
                    let msg = format!(
                        "put `#[leak_check]` above `#[{path}]`, as on a test outside a checked \
                         module, where below it `#[leak_check]` would get the function that \
                         `#[{path}]` has already made"
                    );
                    self.errors.push(Error::new_spanned(&attr, msg));
                }
                let args = Args::parse_attr(&attr, self.errors);
                if args.off.is_some() {
                    if test_attr.is_none() {
                        self.errors.push(Error::new_spanned(
                            &attr,
                            "`off` exempts a test, and this function is not one: it has no \
                             test attribute (`#[test]`, `#[tokio::test]`, another `..::test`)",
                        ));
                    }
                    return Outcome::Exempt;
                }
                args
            }
            None if self.modules.last().is_some_and(ModuleArgs::is_off) => {
                return Outcome::Exempt;
            }
            None => Args::default(),
        };
        Outcome::Checked(expand::test(func, args, &self.modules, self.errors))
    }

    /// Walks a nested module, with its own `#[leak_check]`'s arguments, if it
    /// has one, as defaults nearer than those of the modules around it.
    fn module(&mut self, module: &mut ItemMod, taken: &mut Vec<Path>) -> usize {
        let own = module
            .attrs
            .iter()
            .position(is_leak_check)
            .map(|own| module.attrs.remove(own));
        taken.extend(own.iter().map(|attr| attr.path().clone()));
        if let Some(dup) = module.attrs.iter().find(|attr| is_leak_check(attr)) {
            self.errors
                .push(Error::new_spanned(dup, "duplicate `#[leak_check]`"));
        }
        let Some((_, items)) = &mut module.content else {
            let msg = file_module(&module.ident);
            let error = match &own {
                Some(attr) => Error::new_spanned(attr, msg),
                None => {
                    let (token, name, semi) = (&module.mod_token, &module.ident, &module.semi);
                    Error::new_spanned(quote!(#token #name #semi), msg)
                }
            };
            self.errors.push(error);
            return 0;
        };
        let Some(attr) = own else {
            return self.items(items);
        };
        let args = Args::parse_attr(&attr, self.errors);
        self.modules.push(ModuleArgs::new(args));
        let tests = self.items(items);
        if let Some(this) = self.modules.pop() {
            finish(&this, tests, Some(&attr), self.errors);
        }
        tests
    }
}

/// Reports what a module's `#[leak_check]` gave that nothing took. `attr`
/// is that attribute on a nested module; `None` for the one being expanded.
fn finish(module: &ModuleArgs, tests: usize, attr: Option<&Attribute>, errors: &mut Errors) {
    if tests == 0 {
        let msg = if module.is_off() {
            "`#[leak_check(off)]` on this module exempts nothing: no function in it is a test"
        } else {
            "`#[leak_check]` on this module checks nothing: no function in it has a test \
             attribute (`#[test]`, `#[tokio::test]`, another `..::test`) or `#[leak_check]`. \
             Tests that a macro generates (such as `proptest! { .. }`) are out of its sight: \
             check those with `leakcheck::verify_none()` in their body"
        };
        errors.push(error_at(attr, msg));
        return;
    }
    module.check_used(errors);
}

/// The error for `mod name;`, whose items are in another file.
fn file_module(name: &syn::Ident) -> String {
    format!(
        "`#[leak_check]` can't see the tests of `mod {name};`, whose items are in another \
         file: put it on an inline module in that file (`#[leak_check] mod checked {{ use \
         super::*; .. }}`) or on each test"
    )
}

/// An error at a nested module's `attr`, or at the attribute being expanded.
fn error_at(attr: Option<&Attribute>, msg: &str) -> Error {
    match attr {
        Some(attr) => Error::new_spanned(attr, msg),
        None => Error::new(Span::call_site(), msg),
    }
}

fn is_leak_check(attr: &Attribute) -> bool {
    matches!(attr.style, AttrStyle::Outer) && last_segment_is(attr, "leak_check")
}
