//! End-to-end tests of Agora's four protocol pallets (`pallet-contributions`, `pallet-tasks`,
//! `pallet-validation`, `pallet-rewards`) wired together exactly as the runtime wires them; see
//! `tests/`. The crate has no code of its own.
