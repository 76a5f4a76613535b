package dev.zcopy;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.channels.SocketChannel;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.CyclicBarrier;
import java.util.concurrent.TimeUnit;
import java.util.zip.CRC32;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * A thousand transfers at once through JNI: {@code transferTo} from one shared file into a
 * thousand loopback connections, each from its own thread and large enough that Auto splices
 * where the pipe budget allows and sends the rest with sendfile; every peer gets exactly its
 * range (length and CRC-32, so the heap holds no copy of the bytes).
 */
@Timeout(value = 120, unit = TimeUnit.SECONDS)
class ConcurrencyTest {
    private static final int TRANSFERS = 1000;
    /** Past Auto's 4 MiB splice threshold for file to TCP, unaligned at the end. */
    private static final int EACH = (4 << 20) + 4096;

    @TempDir Path dir;

    @Test
    void aThousandConcurrentTransfersAreByteExact() throws Exception {
        byte[] data = Fixtures.bytes(16 << 20, 11);
        Path src = Fixtures.file(dir, "src", data);
        CyclicBarrier start = new CyclicBarrier(TRANSFERS);
        ConcurrentLinkedQueue<String> failures = new ConcurrentLinkedQueue<>();
        List<Thread> workers = new ArrayList<>();
        try (FileChannel f = Fixtures.read(src)) {
            for (int i = 0; i < TRANSFERS; i++) {
                int n = i;
                Thread t = new Thread(null, () -> {
                    try {
                        one(n, f, data, start);
                    } catch (Throwable e) {
                        failures.add("transfer " + n + ": " + e);
                    }
                }, "transfer-" + i, 256 << 10);
                t.setDaemon(true);
                t.start();
                workers.add(t);
            }
            for (Thread t : workers) {
                t.join(TimeUnit.SECONDS.toMillis(90));
                assertTrue(!t.isAlive(), t.getName() + " hung");
            }
        }
        assertTrue(failures.isEmpty(), failures.size() + " failed, first: " + failures.peek());
    }

    private static void one(int i, FileChannel f, byte[] data, CyclicBarrier start) throws Exception {
        long offset = ((long) i * 4096) % (data.length - EACH);
        SocketChannel[] p = Fixtures.tcpPair();
        try {
            long[] got = new long[2];
            Thread reader = new Thread(null, () -> got[1] = crcOf(p[1], got), "reader-" + i, 256 << 10);
            reader.setDaemon(true);
            reader.start();
            start.await(60, TimeUnit.SECONDS);
            long n = ZeroCopy.transferTo(f, offset, EACH, p[0]);
            p[0].shutdownOutput();
            reader.join(TimeUnit.SECONDS.toMillis(60));
            CRC32 want = new CRC32();
            want.update(data, (int) offset, EACH);
            assertEquals(EACH, n, "reported");
            assertEquals(EACH, got[0], "received");
            assertEquals(want.getValue(), got[1], "CRC-32 of the received bytes");
        } finally {
            Fixtures.closeAll(p[0], p[1]);
        }
    }

    /** Reads the channel to its end; puts the byte count in {@code count[0]}, returns the CRC. */
    private static long crcOf(SocketChannel ch, long[] count) {
        CRC32 crc = new CRC32();
        ByteBuffer buf = ByteBuffer.allocateDirect(64 << 10);
        try {
            while (ch.read(buf) >= 0) {
                buf.flip();
                count[0] += buf.remaining();
                crc.update(buf);
                buf.clear();
            }
        } catch (java.io.IOException e) {
            count[0] = -1;
        }
        return crc.getValue();
    }
}
