package dev.zcopy;

import static dev.zcopy.Fixtures.bytes;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.channels.Pipe;
import java.nio.channels.ReadableByteChannel;
import java.nio.channels.SocketChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/** ZeroCopy.transferFrom against FileChannel.transferFrom on the same inputs. */
@Timeout(value = 120, unit = TimeUnit.SECONDS)
class TransferFromTest {
    static final int SIZE = 70_001;
    static final byte[] DATA = bytes(SIZE, 2);
    static final byte[] OLD = bytes(5000, 3);

    @TempDir
    Path dir;

    static Stream<Arguments> ranges() {
        List<Arguments> out = new ArrayList<>();
        // positions before, at and past the destination's end (OLD.length)
        for (long p : new long[] {0, 100, OLD.length, OLD.length + 1, OLD.length + 4096}) {
            for (long c : new long[] {0, 1, 4097, SIZE, 3L * SIZE}) {
                out.add(Arguments.of(p, c));
            }
        }
        return out.stream();
    }

    interface Source {
        ReadableByteChannel open() throws Exception;
    }

    /** Runs the JDK and zcopy on fresh, identical inputs and compares everything visible. */
    void compare(Source source, long position, long count) throws Exception {
        compare(source, position, count, DATA);
    }

    void compare(Source source, long position, long count, byte[] streamData) throws Exception {
        byte[][] content = new byte[2][];
        Object[] ret = new Object[2];
        long[] srcPos = new long[2];
        for (int i = 0; i < 2; i++) {
            Path dst = Fixtures.file(dir, "dst" + i, OLD);
            ReadableByteChannel src = source.open();
            try (FileChannel d = Fixtures.readWrite(dst)) {
                d.position(17);
                boolean zc = i == 1;
                ret[i] = TransferToTest.outcome(() -> zc ? ZeroCopy.transferFrom(src, d, position, count) : d.transferFrom(src, position, count));
                assertEquals(17, d.position(), "destination position unchanged");
                srcPos[i] = src instanceof FileChannel ? ((FileChannel) src).position() : -1;
                if (src instanceof SocketChannel) {
                    // What the transfer did not take is still there, in order.
                    byte[] rest = Fixtures.readAll(src);
                    long took = ret[i] instanceof Long ? (Long) ret[i] : 0;
                    assertArrayEquals(Fixtures.slice(streamData, took, streamData.length), rest, "stream read past what was written");
                }
            } finally {
                src.close();
            }
            content[i] = Files.readAllBytes(dst);
        }
        assertEquals(ret[0], ret[1], "return value");
        assertEquals(srcPos[0], srcPos[1], "source position");
        assertArrayEquals(content[0], content[1], "destination content");
    }

    @ParameterizedTest(name = "socket source position={0} count={1}")
    @MethodSource("ranges")
    void socketSourceMatchesJdk(long position, long count) throws Exception {
        compare(() -> {
            SocketChannel[] p = Fixtures.tcpPair();
            Fixtures.send(p[1], DATA).get(30, TimeUnit.SECONDS);
            p[1].close();
            return p[0];
        }, position, count);
    }

    @ParameterizedTest(name = "pipe source position={0} count={1}")
    @MethodSource("ranges")
    void pipeSourceMatchesJdk(long position, long count) throws Exception {
        compare(() -> {
            Pipe pipe = Pipe.open();
            Fixtures.POOL.submit(() -> {
                try (Pipe.SinkChannel sink = pipe.sink()) {
                    sink.write(ByteBuffer.wrap(DATA));
                }
                return null;
            });
            return pipe.source();
        }, position, count);
    }

    @ParameterizedTest(name = "file source position={0} count={1}")
    @MethodSource("ranges")
    void fileSourceMatchesJdk(long position, long count) throws Exception {
        Path src = Fixtures.file(dir, "src", DATA);
        compare(() -> {
            FileChannel s = Fixtures.read(src);
            s.position(333);
            return s;
        }, position, count);
    }

    @Test
    void nonBlockingSourceWithNothingToRead() throws Exception {
        compare(() -> {
            SocketChannel[] p = Fixtures.tcpPair();
            p[0].configureBlocking(false);
            Fixtures.POOL.submit(() -> {
                TransferToTest.sleep(2000);
                Fixtures.closeAll(p[1]);
            });
            return p[0];
        }, 0, 100, new byte[0]);
    }

    @Test
    void largeSocketSourceIsWhole() throws Exception {
        long size = 200L << 20;
        SocketChannel[] p = Fixtures.tcpPair();
        Path dst = dir.resolve("big");
        try (FileChannel d = Fixtures.readWrite(dst)) {
            Fixtures.POOL.submit(() -> {
                ByteBuffer buf = ByteBuffer.allocateDirect(1 << 20);
                for (long sent = 0; sent < size; sent += buf.capacity()) {
                    buf.clear();
                    buf.putLong(0, sent);
                    while (buf.hasRemaining()) {
                        p[1].write(buf);
                    }
                }
                p[1].shutdownOutput();
                return null;
            });
            assertEquals(size, ZeroCopy.transferFrom(p[0], d, 0, Long.MAX_VALUE));
            assertEquals(size, d.size());
            assertEquals(0, d.position());
            ByteBuffer b = ByteBuffer.allocate(8);
            d.read(b, 150L << 20);
            assertEquals(150L << 20, b.flip().getLong());
        } finally {
            Fixtures.closeAll(p[0], p[1]);
        }
    }

    interface Case {
        Object run(boolean zc) throws Exception;
    }

    @Test
    void exceptionsMatchJdk() throws Exception {
        Path src = Fixtures.file(dir, "src", DATA);
        Path dstPath = Fixtures.file(dir, "dst", OLD);
        List<Case> cases = new ArrayList<>();
        cases.add(zc -> { // closed destination
            FileChannel d = Fixtures.readWrite(dstPath);
            d.close();
            try (FileChannel s = Fixtures.read(src)) {
                return call(zc, s, d, 0, 10);
            }
        });
        cases.add(zc -> { // closed source
            FileChannel s = Fixtures.read(src);
            s.close();
            try (FileChannel d = Fixtures.readWrite(dstPath)) {
                return call(zc, s, d, 0, 10);
            }
        });
        cases.add(zc -> { // non-writable destination
            try (FileChannel s = Fixtures.read(src); FileChannel d = Fixtures.read(dstPath)) {
                return call(zc, s, d, 0, 10);
            }
        });
        cases.add(zc -> { // non-readable file source
            try (FileChannel s = FileChannel.open(src, StandardOpenOption.WRITE); FileChannel d = Fixtures.readWrite(dstPath)) {
                return call(zc, s, d, 0, 10);
            }
        });
        cases.add(zc -> { // non-readable source and non-writable destination: which comes first
            try (FileChannel s = FileChannel.open(src, StandardOpenOption.WRITE); FileChannel d = Fixtures.read(dstPath)) {
                return call(zc, s, d, 0, 10);
            }
        });
        for (long[] pc : new long[][] {{-1, 10}, {0, -1}}) {
            cases.add(zc -> {
                try (FileChannel s = Fixtures.read(src); FileChannel d = Fixtures.readWrite(dstPath)) {
                    return call(zc, s, d, pc[0], pc[1]);
                }
            });
        }
        cases.add(zc -> { // closed socket source
            SocketChannel[] p = Fixtures.tcpPair();
            p[0].close();
            try (FileChannel d = Fixtures.readWrite(dstPath)) {
                return call(zc, p[0], d, 0, 10);
            } finally {
                p[1].close();
            }
        });
        for (int i = 0; i < cases.size(); i++) {
            Object jdk = cases.get(i).run(false);
            Object zc = cases.get(i).run(true);
            assertInstanceOf(Class.class, jdk, "case " + i + " should throw");
            assertEquals(jdk, zc, "case " + i);
        }
    }

    static Object call(boolean zc, ReadableByteChannel s, FileChannel d, long position, long count) {
        return TransferToTest.outcome(() -> zc ? ZeroCopy.transferFrom(s, d, position, count) : d.transferFrom(s, position, count));
    }

    @Test
    void appendModeDestinationIsHandedToTheJdk() throws Exception {
        Path src = Fixtures.file(dir, "src", DATA);
        Path a = Fixtures.file(dir, "a", OLD);
        Path b = Fixtures.file(dir, "b", OLD);
        long[] ret = new long[2];
        for (int i = 0; i < 2; i++) {
            try (FileChannel s = Fixtures.read(src);
                    FileChannel d = FileChannel.open(i == 0 ? a : b, StandardOpenOption.WRITE, StandardOpenOption.APPEND)) {
                ret[i] = i == 0 ? d.transferFrom(s, 10, 1000) : ZeroCopy.transferFrom(s, d, 10, 1000);
            }
        }
        assertEquals(ret[0], ret[1]);
        assertArrayEquals(Files.readAllBytes(a), Files.readAllBytes(b));
    }

    @Test
    void nullArgumentsThrowNpe() throws IOException {
        Path src = Fixtures.file(dir, "src", DATA);
        try (FileChannel s = Fixtures.readWrite(src)) {
            assertThrows(NullPointerException.class, () -> ZeroCopy.transferFrom(null, s, 0, 1));
            assertThrows(NullPointerException.class, () -> ZeroCopy.transferFrom(s, null, 0, 1));
        }
    }
}
