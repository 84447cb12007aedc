//! What attributes' options have in common: each is named once.

use syn::Meta;

/// The options seen so far in one attribute.
#[derive(Default)]
pub(crate) struct Seen(Vec<String>);

impl Seen {
    /// The name of the option `meta`, once: a name given before is an
    /// error on this one. A path (`a::b = 1`) is no option's name, and
    /// comes back empty, for the caller to report as unknown (never as a
    /// duplicate of another path).
    pub(crate) fn key(&mut self, meta: &Meta) -> syn::Result<String> {
        let Some(key) = meta.path().get_ident().map(ToString::to_string) else {
            return Ok(String::new());
        };
        if self.0.contains(&key) {
            return Err(syn::Error::new_spanned(
                meta.path(),
                format!("duplicate option `{key}`: give each option once"),
            ));
        }
        self.0.push(key.clone());
        Ok(key)
    }
}
