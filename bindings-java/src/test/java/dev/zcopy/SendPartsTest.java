package dev.zcopy;

import static dev.zcopy.Fixtures.bytes;
import static dev.zcopy.Fixtures.get;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayOutputStream;
import java.net.StandardSocketOptions;
import java.nio.ByteBuffer;
import java.nio.channels.ClosedChannelException;
import java.nio.channels.FileChannel;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/** ZeroCopy.sendParts: whole responses over loopback TCP, byte for byte, and resumed. */
@Timeout(value = 60, unit = TimeUnit.SECONDS)
class SendPartsTest {
    static final byte[] HEADER =
            "HTTP/1.1 200 OK\r\nContent-Length: 4096\r\n\r\n".getBytes(StandardCharsets.US_ASCII);

    @TempDir Path dir;

    @Test
    void everyKindOfPartArrivesExactly() throws Exception {
        byte[] data = bytes(300_000, 1);
        SocketChannel[] p = Fixtures.tcpPair();
        try (FileChannel f = Fixtures.read(Fixtures.file(dir, "f", data))) {
            Future<byte[]> got = Fixtures.drain(p[1]);
            ByteBuffer direct = ByteBuffer.allocateDirect(32);
            direct.put("--boundary\r\n".getBytes(StandardCharsets.US_ASCII)).flip();
            ByteBuffer readOnly = ByteBuffer.wrap("\r\n--end--\r\n".getBytes(StandardCharsets.US_ASCII))
                    .asReadOnlyBuffer();
            ByteBuffer heap = ByteBuffer.wrap("xxtrailer".getBytes(StandardCharsets.US_ASCII));
            heap.position(2);
            List<Part> parts = List.of(Part.bytes(HEADER), Part.file(f, 10, 4096), Part.bytes(direct),
                    Part.file(f, 100_000, 200_000), Part.bytes(readOnly), Part.bytes(heap));
            long sent = ZeroCopy.sendParts(p[0], parts);
            p[0].shutdownOutput();
            ByteArrayOutputStream want = new ByteArrayOutputStream();
            want.write(HEADER);
            want.write(Fixtures.slice(data, 10, 4106));
            want.write("--boundary\r\n".getBytes(StandardCharsets.US_ASCII));
            want.write(Fixtures.slice(data, 100_000, 300_000));
            want.write("\r\n--end--\r\ntrailer".getBytes(StandardCharsets.US_ASCII));
            assertArrayEquals(want.toByteArray(), get(got));
            assertEquals(want.size(), sent);
            assertEquals(0, f.position(), "file parts never move the position");
            assertEquals(0, direct.position(), "bytes parts never move the buffer");
            assertEquals(2, heap.position());
        } finally {
            Fixtures.closeAll(p[0], p[1]);
        }
    }

    @Test
    void timeoutsResumeToAnExactWhole() throws Exception {
        byte[] data = bytes(4 << 20, 2);
        SocketChannel[] p = Fixtures.tcpPair();
        p[0].setOption(StandardSocketOptions.SO_SNDBUF, 16384);
        p[1].setOption(StandardSocketOptions.SO_RCVBUF, 16384);
        try (FileChannel f = Fixtures.read(Fixtures.file(dir, "f", data))) {
            List<Part> parts = List.of(Part.bytes(HEADER), Part.file(f, 0, data.length), Part.bytes(HEADER));
            long total = 2L * HEADER.length + data.length;
            long done = 0;
            // The peer does not read yet: the deadline ends the call with its count.
            ZcopyTimeoutException e = assertThrows(ZcopyTimeoutException.class,
                    () -> ZeroCopy.sendParts(p[0], parts, 0, Duration.ofMillis(100)));
            assertTrue(e.bytesTransferred() > 0 && e.bytesTransferred() < total);
            done += e.bytesTransferred();
            Future<byte[]> got = Fixtures.drain(p[1]);
            // Non-blocking: whatever fits now, resumed until done.
            p[0].configureBlocking(false);
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
            while (done < total) {
                done += ZeroCopy.sendParts(p[0], parts, done, null);
                assertTrue(System.nanoTime() < deadline, "resume loop stuck at " + done);
                Thread.sleep(1);
            }
            p[0].configureBlocking(true);
            p[0].shutdownOutput();
            ByteArrayOutputStream want = new ByteArrayOutputStream();
            want.write(HEADER);
            want.write(data);
            want.write(HEADER);
            assertArrayEquals(want.toByteArray(), get(got));
            assertTrue(p[0].isOpen());
        } finally {
            Fixtures.closeAll(p[0], p[1]);
        }
    }

    @Test
    void badPartsAreRefusedBeforeAnyByte() throws Exception {
        SocketChannel[] p = Fixtures.tcpPair();
        try (FileChannel f = Fixtures.read(Fixtures.file(dir, "f", bytes(1000, 3)))) {
            assertThrows(IllegalArgumentException.class,
                    () -> ZeroCopy.sendParts(p[0], List.of(Part.bytes(HEADER), Part.file(f, 500, 501))));
            assertThrows(IllegalArgumentException.class,
                    () -> ZeroCopy.sendParts(p[0], List.of(Part.bytes(HEADER)), HEADER.length + 1, null));
            assertThrows(IllegalArgumentException.class, () -> Part.file(f, -1, 1));
            assertThrows(NullPointerException.class, () -> ZeroCopy.sendParts(p[0], null));
            p[1].configureBlocking(false);
            assertEquals(0, p[1].read(ByteBuffer.allocate(1)), "nothing was sent");
            p[0].close();
            assertThrows(ClosedChannelException.class, () -> ZeroCopy.sendParts(p[0], List.of(Part.bytes(HEADER))));
        } finally {
            Fixtures.closeAll(p[0], p[1]);
        }
    }

    @Test
    void resetPeerIsAnErrorWithTheCount() throws Exception {
        byte[] data = bytes(16 << 20, 4);
        SocketChannel[] p = Fixtures.tcpPair();
        p[0].setOption(StandardSocketOptions.SO_SNDBUF, 16384);
        try (FileChannel f = Fixtures.read(Fixtures.file(dir, "f", data))) {
            Future<Integer> reader = Fixtures.POOL.submit(() -> {
                ByteBuffer b = ByteBuffer.allocate(100_000);
                while (b.hasRemaining()) {
                    p[1].read(b);
                }
                p[1].setOption(StandardSocketOptions.SO_LINGER, 0);
                p[1].close();
                return 100_000;
            });
            ZcopyException e = assertThrows(ZcopyException.class,
                    () -> ZeroCopy.sendParts(p[0], List.of(Part.bytes(HEADER), Part.file(f, 0, data.length))));
            assertTrue(e.errno() == 104 || e.errno() == 32, "ECONNRESET or EPIPE: " + e.errno());
            assertTrue(e.bytesTransferred() >= get(reader), "count covers what the peer read");
        } finally {
            Fixtures.closeAll(p[0], p[1]);
        }
    }
}
