"""git's clean filter for notebooks (`make hooks` installs it): a notebook on stdin, the same notebook on stdout as
`nbdev_clean` writes it (execution counts, kernel and cell metadata stripped as settings.ini says; outputs kept).

nbdev's own `nbdev_clean --stdin` writes nothing with this project's execnb, so git would commit an empty file; this calls the
same cleaning function and writes its result. If cleaning fails, the notebook passes through unchanged (git never stores less
than it was given) and the reason goes to stderr.
"""
import sys


def clean(text: str) -> str:
    "`text` (a notebook's JSON) cleaned as nbdev_clean cleans a notebook file."
    from fastcore.xtras import loads
    from execnb.nbio import nb2str
    from nbdev.clean import _nbdev_clean
    nb = loads(text)
    _nbdev_clean(nb)
    return nb2str(nb)


if __name__ == '__main__':
    raw = sys.stdin.buffer.read().decode('utf-8')
    try: out = clean(raw)
    except Exception as e:
        print(f'nbclean: notebook committed as it is, not cleaned: {type(e).__name__}: {e}', file=sys.stderr)
        out = raw
    sys.stdout.buffer.write(out.encode('utf-8'))
