//! Prints the Adler-32 checksum of each argument, as 8 hex digits per line.
#![forbid(unsafe_code)]

fn main() {
    for arg in std::env::args().skip(1) {
        println!("{:08x}", checksum::adler32(arg.as_bytes()));
    }
}
