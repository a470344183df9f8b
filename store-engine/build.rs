//! Compiles the etcd v3 API protos with protox (pure Rust: no system protoc).

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let files = ["proto/etcdserverpb/rpc.proto", "proto/mvccpb/kv.proto"];
    for f in files {
        println!("cargo:rerun-if-changed={f}");
    }
    let fds = protox::compile(files, ["proto"])?;
    tonic_prost_build::configure()
        .build_server(true)
        .build_client(true)
        // Watch responses go out with each event encoded once by the hub (src/grpc.rs).
        .extern_path(".etcdserverpb.WatchResponse", "crate::grpc::WatchResponse")
        .compile_fds(fds)?;
    Ok(())
}
