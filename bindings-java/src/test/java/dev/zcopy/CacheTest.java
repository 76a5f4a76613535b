package dev.zcopy;

import static dev.zcopy.Fixtures.bytes;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.FileInputStream;
import java.io.FileOutputStream;
import java.nio.channels.FileChannel;
import java.nio.channels.SocketChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * The page-cache policy reaches the engine from Java (residency itself is measured with mincore
 * in the Rust, C and Python suites, which can call it): bytes exact for every policy, Direct
 * reads with read_write, Direct with a page-cache method refused, Direct through sendParts.
 */
@Timeout(value = 60, unit = TimeUnit.SECONDS)
class CacheTest {
    @TempDir Path dir;

    @Test
    void everyPolicyDeliversTheSameBytes() throws Exception {
        byte[] data = bytes(5_000_000, 1);
        Path src = Fixtures.file(dir, "src", data);
        for (Cache c : Cache.values()) {
            Path dst = dir.resolve("dst-" + c);
            try (FileInputStream in = new FileInputStream(src.toFile());
                    FileOutputStream out = new FileOutputStream(dst.toFile())) {
                TransferReport r = ZeroCopy.transfer(in.getFD(), out.getFD(),
                        TransferOptions.builder().cache(c).offset(1000).count(3_000_001).build());
                assertEquals(3_000_001, r.bytes());
                if (c == Cache.DIRECT) {
                    assertEquals(Method.READ_WRITE, r.method(), "O_DIRECT reads are read_write");
                }
            }
            assertArrayEquals(Fixtures.slice(data, 1000, 3_001_001), Files.readAllBytes(dst), c.toString());
        }
    }

    @Test
    void directWithAPageCacheMethodIsRefused() throws Exception {
        Path src = Fixtures.file(dir, "src", bytes(10_000, 2));
        try (FileInputStream in = new FileInputStream(src.toFile());
                FileOutputStream out = new FileOutputStream(dir.resolve("dst").toFile())) {
            assertThrows(IllegalArgumentException.class, () -> ZeroCopy.transfer(in.getFD(), out.getFD(),
                    TransferOptions.builder().cache(Cache.DIRECT).method(Method.SENDFILE).build()));
        }
        assertEquals(0, Files.size(dir.resolve("dst")));
    }

    @Test
    void sendPartsWithDirectReads() throws Exception {
        byte[] data = bytes(3_000_000, 3);
        SocketChannel[] p = Fixtures.tcpPair();
        try (FileChannel f = Fixtures.read(Fixtures.file(dir, "src", data))) {
            Future<byte[]> got = Fixtures.drain(p[1]);
            long n = ZeroCopy.sendParts(p[0], List.of(Part.bytes(new byte[] {'H'}), Part.file(f, 7, 2_000_000)),
                    0, null, Cache.DIRECT);
            p[0].shutdownOutput();
            byte[] b = Fixtures.get(got);
            assertEquals(2_000_001, n);
            assertEquals('H', b[0]);
            assertArrayEquals(Fixtures.slice(data, 7, 2_000_007), Fixtures.slice(b, 1, b.length));
            assertTrue(p[0].isOpen());
        } finally {
            Fixtures.closeAll(p[0], p[1]);
        }
    }
}
