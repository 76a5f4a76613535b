package dev.zcopy;

import static dev.zcopy.Fixtures.bytes;
import static dev.zcopy.Fixtures.get;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.net.StandardSocketOptions;
import java.nio.ByteBuffer;
import java.nio.channels.ClosedChannelException;
import java.nio.channels.SocketChannel;
import java.time.Duration;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/** ZeroCopy.relay: client1 - [a relay b] - client2 over loopback. */
@Timeout(value = 60, unit = TimeUnit.SECONDS)
class RelayTest {
    @Test
    void halfCloseInEachDirection() throws Exception {
        SocketChannel[] left = Fixtures.tcpPair();   // [0] client1, [1] a
        SocketChannel[] right = Fixtures.tcpPair();  // [0] b, [1] client2
        byte[] request = bytes(3 << 20, 5);
        byte[] reply = bytes(1 << 20 | 7, 6);
        try {
            Future<RelayReport> relay = Fixtures.POOL.submit(() -> ZeroCopy.relay(left[1], right[0]));
            // client1 sends and half-closes; client2 reads to EOF, then answers and half-closes.
            Fixtures.send(left[0], request);
            byte[] got = Fixtures.readAll(right[1]);
            assertArrayEquals(request, got);
            Fixtures.send(right[1], reply);
            assertArrayEquals(reply, Fixtures.readAll(left[0]));
            RelayReport r = get(relay);
            assertEquals(request.length, r.aToB());
            assertEquals(reply.length, r.bToA());
            assertTrue(r.syscalls() > 0);
            // A lone relay gets pipes: the budget is far from exhausted (and does not bind root).
            assertFalse(r.buffered());
            assertTrue(r.toString().contains("buffered=false"), r.toString());
            assertTrue(left[1].isOpen() && right[0].isOpen(), "relay does not close the channels");
            assertTrue(left[1].isBlocking() && right[0].isBlocking(), "blocking mode kept");
        } finally {
            Fixtures.closeAll(left[0], left[1], right[0], right[1]);
        }
    }

    @Test
    void bothDirectionsAtOnce() throws Exception {
        SocketChannel[] left = Fixtures.tcpPair();
        SocketChannel[] right = Fixtures.tcpPair();
        byte[] x = bytes(8 << 20, 7);
        byte[] y = bytes(8 << 20, 8);
        try {
            Future<RelayReport> relay = Fixtures.POOL.submit(() -> ZeroCopy.relay(left[1], right[0]));
            Future<byte[]> atRight = Fixtures.drain(right[1]);
            Future<byte[]> atLeft = Fixtures.drain(left[0]);
            Fixtures.send(left[0], x);
            Fixtures.send(right[1], y);
            assertArrayEquals(x, get(atRight));
            assertArrayEquals(y, get(atLeft));
            RelayReport r = get(relay);
            assertEquals(x.length, r.aToB());
            assertEquals(y.length, r.bToA());
        } finally {
            Fixtures.closeAll(left[0], left[1], right[0], right[1]);
        }
    }

    @Test
    void resetPeerThrowsWithErrno() throws Exception {
        SocketChannel[] left = Fixtures.tcpPair();
        SocketChannel[] right = Fixtures.tcpPair();
        try {
            Future<RelayReport> relay = Fixtures.POOL.submit(() -> ZeroCopy.relay(left[1], right[0]));
            left[0].write(ByteBuffer.wrap(bytes(1000, 9)));
            assertEquals(1000, Fixtures.readN(right[1], 1000).length);
            // An abortive close: RST instead of FIN.
            right[1].setOption(StandardSocketOptions.SO_LINGER, 0);
            right[1].close();
            for (int i = 0; i < 50 && !relay.isDone(); i++) {
                left[0].write(ByteBuffer.wrap(bytes(1000, i)));
                Thread.sleep(20);
            }
            Exception e = assertThrows(Exception.class, () -> get(relay));
            ZcopyException z = (ZcopyException) e.getCause();
            assertTrue(z.errno() == 104 || z.errno() == 32, "errno " + z.errno());
        } finally {
            Fixtures.closeAll(left[0], left[1], right[0], right[1]);
        }
    }

    @Test
    void closedChannelAndTimeout() throws Exception {
        SocketChannel[] left = Fixtures.tcpPair();
        SocketChannel[] right = Fixtures.tcpPair();
        try {
            assertThrows(ZcopyTimeoutException.class, () -> ZeroCopy.relay(left[1], right[0], Duration.ofMillis(100)));
            right[0].close();
            assertThrows(ClosedChannelException.class, () -> ZeroCopy.relay(left[1], right[0]));
        } finally {
            Fixtures.closeAll(left[0], left[1], right[0], right[1]);
        }
    }
}
