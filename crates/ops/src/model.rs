//! The discovery model: the API's wire types, defined once in
//! `superserver-wire`.

pub use superserver_wire::{
    Change, ChangeKind, ComposeDependency, ComposeInfo, ContainerInfo, ContainerNetwork, ContainerPort, Edge, EdgeKind,
    ListenPort, ProcessInfo, Proto, Service, ServiceKind, Snapshot, UnitInfo,
};
