"""``dfdnet-app`` / ``python -m dfdnet.app``: serve the restoration page and HTTP API on this machine.

    dfdnet-app                      # http://127.0.0.1:7860
    dfdnet-app --port 8080 --upscale_factor 2 --device cpu

Every restore option of ``dfdnet-restore`` but the input, output and per-run ones is a flag here
and is the default of each request; the page and the API may change ``REQUEST_FIELDS`` and the model.
"""
from __future__ import annotations

import argparse
import logging
import sys

logger = logging.getLogger(__name__)

# RestoreOptions fields that belong to a folder run, not to a server
NOT_SERVED = ('test_path', 'results_dir', 'ext', 'save_frames', 'write_html', 'aligned', 'landmarks_dir',
              'dft_levels')


def build_parser() -> argparse.ArgumentParser:
    """The flags of ``AppSettings`` and of ``RestoreOptions`` (less ``NOT_SERVED``)."""
    from dfdnet.app.settings import AppSettings
    from dfdnet.pipeline.options import RestoreOptions
    from dfdnet.utils.options import add_arguments

    parser = argparse.ArgumentParser(prog='dfdnet-app', description='Serve a page and an HTTP API that restore the '
                                     'faces of photos and videos, on this machine (nothing is fetched from elsewhere).')
    groups = {name: parser.add_argument_group(name) for name in ('server', 'released options', 'model', 'faces',
                                                                 'output', 'video')}
    add_arguments(parser, AppSettings, groups)
    add_arguments(parser, RestoreOptions, groups, exclude=NOT_SERVED)
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    from dfdnet.app.settings import AppSettings
    from dfdnet.pipeline.options import RestoreOptions
    from dfdnet.utils.options import options_from_args
    from dfdnet.utils.text import configure_logging

    configure_logging(logging.DEBUG if args.verbose else logging.INFO, '%(asctime)s %(levelname)s %(name)s: %(message)s')
    try:
        settings = options_from_args(AppSettings, args)
        options = options_from_args(RestoreOptions, args)
    except ValueError as exc:
        parser.error(str(exc))
    if not settings.is_local:
        print(f'warning: --host {settings.host} lets every machine that can reach this one use the app and see the '
              'page; there is no login. Use it only on a network you trust.', file=sys.stderr)
    import uvicorn

    from dfdnet.app.server import create_app

    app = create_app(settings, options)
    print(f'dfdnet-app: open http://{_url_host(settings.host)}:{settings.port}/ (Ctrl+C stops it)', file=sys.stderr)
    uvicorn.run(app, host=settings.host, port=settings.port, log_level='debug' if args.verbose else 'info',
                log_config=None)
    return 0


def _url_host(host: str) -> str:
    if host in ('0.0.0.0', '::', ''):
        return '127.0.0.1'
    return f'[{host}]' if ':' in host else host


if __name__ == '__main__':
    sys.exit(main())
