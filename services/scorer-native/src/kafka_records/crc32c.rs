//! CRC-32C (Castagnoli), the checksum of a Kafka record batch.

use crate::ffi::crc32c_by_cpu;

/// CRC-32C (Castagnoli), as Kafka checks record batches: with SSE 4.2 when the CPU has
/// it, else a table.
pub(super) fn crc32c(data: &[u8]) -> u32 {
    crc32c_by_cpu(data).unwrap_or_else(|| crc32c_table(data))
}

const CRC32C_TABLE: [u32; 256] = {
    let mut table = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut crc = i as u32;
        let mut bit = 0;
        while bit < 8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0x82f6_3b78
            } else {
                crc >> 1
            };
            bit += 1;
        }
        table[i] = crc;
        i += 1;
    }
    table
};

fn crc32c_table(data: &[u8]) -> u32 {
    let mut crc = 0xffff_ffffu32;
    for &b in data {
        crc = CRC32C_TABLE[((crc ^ u32::from(b)) & 0xff) as usize] ^ (crc >> 8);
    }
    !crc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32c_matches_the_standard_check_value_both_ways() {
        // The CRC-32C check value of "123456789" (RFC 3720's polynomial).
        assert_eq!(crc32c_table(b"123456789"), 0xe306_9283);
        assert_eq!(crc32c(b"123456789"), 0xe306_9283);
        let long: Vec<u8> = (0..1000u32).map(|i| (i * 7 + 3) as u8).collect();
        for n in [0, 1, 7, 8, 9, 63, 64, 65, 999, 1000] {
            assert_eq!(crc32c(&long[..n]), crc32c_table(&long[..n]), "{n} bytes");
        }
    }
}
