//! `fermyon:spin/variables@2.0.0` for the guest: reads the tenant's
//! [`Variables`], with Spin's name rule.

use wasmtime::component::HasData;

use crate::bindings::fermyon::spin::variables::{self, Error};
use crate::variables::{Lookup, Variables};

/// Links the variables import against a store's [`Variables`].
pub struct SpinVariables;

impl HasData for SpinVariables {
    type Data<'a> = &'a Variables;
}

impl variables::Host for &Variables {
    async fn get(&mut self, name: String) -> wasmtime::Result<Result<String, Error>> {
        Ok(match self.lookup(&name) {
            Lookup::Found(value) => Ok(value.to_owned()),
            Lookup::InvalidName => Err(Error::InvalidName(format!(
                "`{name}`: names are lowercase letters, digits and underscores, starting with a letter"
            ))),
            Lookup::Undefined => Err(Error::Undefined(format!("no variable named `{name}`"))),
        })
    }
}
