# Common tasks; each recipe is a thin wrapper over a hack/ script or cargo.

# Build the release binaries.
build:
    cargo build --release

# The whole test suite (as root), as CI runs it.
test:
    hack/test

# Make the demo bundle and run it.
demo:
    cargo build --release
    hack/mkbundle bundles/demo
    cd bundles/demo && ../../target/release/hull run demo

# Lifecycle benchmark against runc (writes docs/BENCHMARKS.md).
bench:
    cargo build --release
    hack/bench-lifecycle --out docs/BENCHMARKS.md
