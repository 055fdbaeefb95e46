"""A TCP proxy on 127.0.0.1 that adds latency: every chunk it forwards, either way, is held for
`one_way_s` (half a round trip), byte order kept, nothing parsed. Run in its own process (spawn)
by bench/latency_bench.py and the S3 sizing test."""

from __future__ import annotations

import asyncio


def delay_proxy(listen_port: int, upstream_port: int, one_way_s: float, ready) -> None:
    """Forward 127.0.0.1:listen_port to 127.0.0.1:upstream_port, each chunk held one_way_s."""

    async def pump(reader, writer):
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue = asyncio.Queue()

        async def send():
            while (item := await queue.get()) is not None:
                due, data = item
                if (wait := due - loop.time()) > 0:
                    await asyncio.sleep(wait)
                writer.write(data)
                await writer.drain()
            writer.close()

        sender = asyncio.ensure_future(send())
        try:
            while data := await reader.read(65536):
                queue.put_nowait((loop.time() + one_way_s, data))
        except ConnectionError:
            pass
        queue.put_nowait(None)
        await sender

    async def handle(client_reader, client_writer):
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", upstream_port)
        except OSError:
            client_writer.close()
            return
        await asyncio.gather(pump(client_reader, up_writer), pump(up_reader, client_writer), return_exceptions=True)

    async def main():
        server = await asyncio.start_server(handle, "127.0.0.1", listen_port)
        ready.set()
        async with server:
            await server.serve_forever()

    asyncio.run(main())
