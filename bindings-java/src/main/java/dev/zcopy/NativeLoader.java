package dev.zcopy;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.Locale;
import java.util.Properties;

/**
 * Loads {@code libzcopy_jni.so} once per class loader, in this order:
 * <ol>
 *   <li>the file named by the system property {@value #PATH_PROPERTY} (no fallback: a wrong
 *       path is an error);</li>
 *   <li>the jar resource {@code native/<os>-<arch>/libzcopy_jni.so}, extracted to a temporary
 *       file that is deleted once loaded;</li>
 *   <li>{@code System.loadLibrary("zcopy_jni")} ({@code java.library.path}).</li>
 * </ol>
 * Then it compares the library's version with the jar's and refuses a library from another
 * build. On JDK 24 and later, loading a library is a restricted method: run with
 * {@code --enable-native-access=ALL-UNNAMED} (the jar's manifest sets
 * {@code Enable-Native-Access: ALL-UNNAMED}, which only counts for {@code java -jar}) to
 * avoid the warning.
 */
final class NativeLoader {
    /** System property naming an explicit library file. */
    static final String PATH_PROPERTY = "zcopy.native.path";

    private static final String LIB = "zcopy_jni";
    private static boolean loaded;
    /** Set while loading: Native's static initializer calls back into load(). */
    private static boolean loading;
    private static Throwable failure;
    private static String source;

    private NativeLoader() {
    }

    /**
     * Loads the library if it is not loaded yet. Thread-safe; later calls return at once (or
     * throw the first failure again).
     *
     * @throws UnsatisfiedLinkError if it cannot be loaded or its version differs from the jar's
     */
    static synchronized void load() {
        if (loaded || loading) {
            return;
        }
        if (failure != null) {
            throw linkError("zcopy native library failed to load earlier: " + failure.getMessage(), failure);
        }
        loading = true;
        try {
            source = loadLibrary();
            String expected = expectedVersion();
            String actual = Native.version();
            if (!expected.equals(actual)) {
                throw new UnsatisfiedLinkError("zcopy native library " + source + " is version " + actual
                        + " but this jar is version " + expected + ": it comes from another build");
            }
            loaded = true;
        } catch (RuntimeException | UnsatisfiedLinkError e) {
            failure = e;
            throw e instanceof UnsatisfiedLinkError ? (UnsatisfiedLinkError) e : linkError(e.getMessage(), e);
        } finally {
            loading = false;
        }
    }

    /**
     * Where the library was loaded from (a path, "resource ..." or "java.library.path").
     *
     * @return a description of the source, or null before loading
     */
    static synchronized String source() {
        return source;
    }

    /**
     * The version this jar was built with (from its build properties).
     *
     * @return the jar's version
     */
    static String expectedVersion() {
        Properties p = new Properties();
        try (InputStream in = NativeLoader.class.getResourceAsStream("zcopy-build.properties")) {
            if (in == null) {
                throw new IllegalStateException("zcopy-build.properties is missing from the jar");
            }
            p.load(in);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        return p.getProperty("version", "unknown");
    }

    private static String loadLibrary() {
        String explicit = System.getProperty(PATH_PROPERTY);
        if (explicit != null && !explicit.isEmpty()) {
            System.load(Path.of(explicit).toAbsolutePath().toString());
            return explicit;
        }
        String resource = "/native/" + platform() + "/lib" + LIB + ".so";
        try (InputStream in = NativeLoader.class.getResourceAsStream(resource)) {
            if (in != null) {
                Path tmp = Files.createTempFile("lib" + LIB + "-", ".so");
                try {
                    Files.copy(in, tmp, StandardCopyOption.REPLACE_EXISTING);
                    System.load(tmp.toAbsolutePath().toString());
                } finally {
                    // Once loaded the mapping keeps the code; the file is not needed any more.
                    Files.deleteIfExists(tmp);
                }
                return "resource " + resource;
            }
        } catch (IOException e) {
            throw linkError("cannot extract " + resource + ": " + e, e);
        }
        System.loadLibrary(LIB);
        return "java.library.path";
    }

    /** The resource folder for this platform, e.g. "linux-x86_64". */
    static String platform() {
        String os = System.getProperty("os.name", "").toLowerCase(Locale.ROOT);
        String arch = System.getProperty("os.arch", "").toLowerCase(Locale.ROOT);
        if (arch.equals("amd64") || arch.equals("x86_64")) {
            arch = "x86_64";
        } else if (arch.equals("arm64") || arch.equals("aarch64")) {
            arch = "aarch64";
        }
        return (os.startsWith("linux") ? "linux" : os.replace(' ', '_')) + "-" + arch;
    }

    private static UnsatisfiedLinkError linkError(String msg, Throwable cause) {
        UnsatisfiedLinkError e = new UnsatisfiedLinkError(msg);
        e.initCause(cause);
        return e;
    }
}
