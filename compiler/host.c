/* host.c — runs a model spec in a Lua sandbox and returns the model it built.
 *
 * The sandbox opens only base, math, string and table, removes everything in
 * base that reaches files or compiles code, loads the spec in text mode (crafted
 * bytecode can crash the VM), caps Lua's memory with our own allocator and
 * stops a spec that runs too long with an instruction-count hook. */
#include "compiler.h"

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    size_t used, limit;
} MemoryBudget;

static void *capped_alloc(void *ud, void *ptr, size_t old_size, size_t new_size)
{
    MemoryBudget *budget = ud;
    if (!ptr) old_size = 0; /* for a new block, old_size is the object kind */
    if (new_size == 0) {
        free(ptr);
        budget->used -= old_size;
        return NULL;
    }
    if (new_size > old_size && budget->used + (new_size - old_size) > budget->limit)
        return NULL; /* Lua raises "not enough memory" */
    void *p = realloc(ptr, new_size);
    if (p) budget->used += new_size - old_size;
    return p;
}

enum { HOOK_EVERY = 10000 };

static void instruction_hook(lua_State *L, lua_Debug *ar)
{
    long *remaining = *(long **)lua_getextraspace(L);
    *remaining -= HOOK_EVERY;
    if (*remaining >= 0) return;
    lua_getinfo(L, "Sl", ar);
    const char *src = ar->source[0] == '@' ? ar->source + 1 : ar->short_src;
    luaL_error(L, "%s:%d: the spec ran past its instruction budget (an endless loop?)", src, ar->currentline);
}

static void open_sandbox_libraries(lua_State *L)
{
    static const luaL_Reg libs[] = {
        {LUA_GNAME, luaopen_base},
        {LUA_MATHLIBNAME, luaopen_math},
        {LUA_STRLIBNAME, luaopen_string},
        {LUA_TABLIBNAME, luaopen_table},
    };
    for (size_t i = 0; i < sizeof libs / sizeof libs[0]; i++) {
        luaL_requiref(L, libs[i].name, libs[i].func, 1);
        lua_pop(L, 1);
    }
    /* What base has that reaches files, compiles code or breaks the budget. */
    static const char *const removed[] = {"dofile", "loadfile", "load", "require",
                                          "collectgarbage", "string.dump"};
    for (size_t i = 0; i < sizeof removed / sizeof removed[0]; i++) {
        const char *dot = strchr(removed[i], '.');
        if (dot) {
            lua_getglobal(L, "string");
            lua_pushnil(L);
            lua_setfield(L, -2, dot + 1);
            lua_pop(L, 1);
        } else {
            lua_pushnil(L);
            lua_setglobal(L, removed[i]);
        }
    }
}

static char *read_spec(const char *path, size_t *size)
{
    FILE *f = fopen(path, "rb");
    if (!f) fatal("cannot open spec %s: %s", path, strerror(errno));
    if (fseek(f, 0, SEEK_END) != 0) fatal("cannot read spec %s", path);
    long n = ftell(f);
    if (n < 0 || n > (16 << 20)) fatal("%s: not a readable spec file (size %ld)", path, n);
    rewind(f);
    char *text = xalloc((size_t)n + 1);
    if (fread(text, 1, (size_t)n, f) != (size_t)n) fatal("cannot read spec %s", path);
    fclose(f);
    *size = (size_t)n;
    return text;
}

/* Runs inside lua_pcall: nothing here holds malloc'd memory across an error. */
static int run_protected(lua_State *L)
{
    const char *path = lua_touserdata(L, 1);
    Model *model = lua_touserdata(L, 2);
    size_t size;
    char *text = read_spec(path, &size);
    const char *chunkname = xprintf("@%s", path);
    if (luaL_loadbufferx(L, text, size, chunkname, "t") != LUA_OK) lua_error(L);
    dsl_open(L, model);
    lua_call(L, 0, 1);
    return 1;
}

Model *run_spec(const char *path, SandboxLimits limits)
{
    MemoryBudget budget = {0, limits.memory_limit};
    lua_State *L = lua_newstate(capped_alloc, &budget);
    if (!L) fatal("cannot start Lua");
    long remaining = limits.instruction_limit;
    *(long **)lua_getextraspace(L) = &remaining;
    lua_sethook(L, instruction_hook, LUA_MASKCOUNT, HOOK_EVERY);
    open_sandbox_libraries(L);

    Model *model = xalloc(sizeof *model);
    model->file = xstrdup(path);
    lua_pushcfunction(L, run_protected);
    lua_pushlightuserdata(L, (void *)path);
    lua_pushlightuserdata(L, model);
    int status = lua_pcall(L, 2, 1, 0);
    if (status != LUA_OK) {
        if (status == LUA_ERRMEM)
            fprintf(stderr, "%s: the spec ran out of its memory budget of %zu MiB (a runaway allocation?)\n", path,
                    limits.memory_limit >> 20);
        else
            fprintf(stderr, "%s\n", lua_tostring(L, -1) ? lua_tostring(L, -1) : "error in spec (no message)");
        lua_close(L);
        free_all();
        exit(1);
    }
    bool returned_model = luaL_testudata(L, -1, "genc.model") != NULL;
    lua_close(L);
    if (!returned_model)
        error_at((SrcLoc){model->file, 0}, "the spec must end with `return model \"name\" {...}`");
    return model;
}
