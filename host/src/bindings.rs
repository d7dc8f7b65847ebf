//! Host bindings for the part of the `wasmpaste` world the host implements
//! or calls itself: Spin's sqlite and variables, and the maintenance export.
//! `wasi:http` comes from wasmtime-wasi-http (`ProxyPre`), WASI from wasmtime-wasi.
//! Generated code only: the implementations are in `spin_sqlite.rs` and
//! `spin_variables.rs`.

wasmtime::component::bindgen!({
    path: "../wit",
    world: "wasmpaste:app/host-bindings",
    imports: { default: async | trappable },
    exports: { default: async },
    with: {
        "fermyon:spin/sqlite.connection": crate::db::AnyConnection,
    },
    require_store_data_send: true,
});
