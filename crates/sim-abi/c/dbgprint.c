/*
 * DbgPrintEx for the Linux test binaries that run ferry.sys's code (ferry-sim-abi, module
 * `nt`, substitution 2). The kernel's DbgPrintEx is variadic (`__cdecl`; on x64 the one
 * calling convention), and stable Rust cannot define a variadic function, so this one is C:
 * it formats the line with vsnprintf (the driver only uses `%.*s` and `%s`, which mean the
 * same here as in the kernel's printf) and hands it to Rust.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>

/* Defined in src/nt/kernel.rs. `full_len`: the length the whole line would have had. */
void ferry_sim_abi_debug_print(unsigned int component, unsigned int level, const char *text,
                               size_t len, size_t full_len);

unsigned int DbgPrintEx(unsigned int ComponentId, unsigned int Level, const char *Format, ...)
{
    char line[1024];
    va_list arguments;
    int written;
    size_t kept;

    va_start(arguments, Format);
    written = vsnprintf(line, sizeof line, Format, arguments);
    va_end(arguments);
    if (written < 0) {
        written = 0;
    }
    kept = (size_t)written < sizeof line ? (size_t)written : sizeof line - 1;
    ferry_sim_abi_debug_print(ComponentId, Level, line, kept, (size_t)written);
    return 0; /* STATUS_SUCCESS */
}
