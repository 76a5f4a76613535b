package dev.zcopy;

import static dev.zcopy.Fixtures.bytes;
import static dev.zcopy.Fixtures.get;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayOutputStream;
import java.net.StandardProtocolFamily;
import java.nio.ByteBuffer;
import java.nio.channels.ClosedChannelException;
import java.nio.channels.SocketChannel;
import java.time.Duration;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/** ZeroCopySender over loopback TCP. */
@Timeout(value = 60, unit = TimeUnit.SECONDS)
class SenderTest {
    @Test
    void sendsDirectBuffersAndTracksCompletions() throws Exception {
        Assumptions.assumeTrue(ZeroCopy.capabilities().contains(Method.MSG_ZEROCOPY), "kernel without MSG_ZEROCOPY");
        SocketChannel[] p = Fixtures.tcpPair();
        ByteArrayOutputStream expected = new ByteArrayOutputStream();
        try {
            Future<byte[]> peer = Fixtures.drain(p[1]);
            long lastId = -1;
            try (ZeroCopySender sender = ZeroCopySender.open(p[0])) {
                for (int i = 0; i < 20; i++) {
                    byte[] chunk = bytes(100_000 + i, i);
                    expected.write(chunk);
                    ByteBuffer buf = ByteBuffer.allocateDirect(chunk.length + 10);
                    buf.put(chunk).flip();
                    long id = sender.send(buf);
                    assertEquals(i, id);
                    assertEquals(buf.limit(), buf.position());
                    lastId = id;
                }
                assertEquals(20, sender.poll(Duration.ofSeconds(10)));
                assertTrue(sender.isComplete(lastId));
                ZeroCopySender.Stats s = sender.stats();
                assertEquals(20, s.sent());
                assertEquals(20, s.done());
                assertEquals(0, s.pending());
                assertTrue(s.completions() >= 20);
                // Loopback never shares pages: the kernel reports every send as copied.
                assertEquals(s.completions(), s.copied());
                assertTrue(s.kernelCopied());
                assertThrows(IllegalArgumentException.class, () -> sender.send(ByteBuffer.allocate(10)));
            }
            p[0].shutdownOutput();
            assertArrayEquals(expected.toByteArray(), get(peer));
            ZeroCopySender closed = ZeroCopySender.open(p[0]);
            closed.close();
            closed.close();
            assertThrows(ClosedChannelException.class, () -> closed.send(ByteBuffer.allocateDirect(1)));
        } finally {
            Fixtures.closeAll(p[0], p[1]);
        }
    }

    @Test
    void unixSocketIsUnsupported() throws Exception {
        java.nio.file.Path path = java.nio.file.Files.createTempDirectory("zc").resolve("s");
        try (var server = java.nio.channels.ServerSocketChannel.open(StandardProtocolFamily.UNIX)) {
            server.bind(java.net.UnixDomainSocketAddress.of(path));
            try (SocketChannel c = SocketChannel.open(java.net.UnixDomainSocketAddress.of(path)); SocketChannel a = server.accept()) {
                assertThrows(ZcopyUnsupportedException.class, () -> ZeroCopySender.open(c));
            }
        } finally {
            java.nio.file.Files.deleteIfExists(path);
        }
    }

    @Test
    void closedChannel() throws Exception {
        SocketChannel[] p = Fixtures.tcpPair();
        p[0].close();
        p[1].close();
        assertThrows(ClosedChannelException.class, () -> ZeroCopySender.open(p[0]));
    }
}
