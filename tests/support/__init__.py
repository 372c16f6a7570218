"""Helpers shared by test modules (fixtures stay in the conftest files).

apps         ``make_app``, ``CliRunner``, ``login``
databases    ``fresh_db``, ``DB_KINDS``: the databases behind the ``*db_url`` fixtures
browser      the browser tests' fixtures (``live_server``, ``chromium``, ``browser_page``,
             ``page_log``) and ``open_page``; registered by ``tests/conftest.py``
live_server  ``serve``: `taktline serve` with a private Mosquitto; ``LiveServer``
mosquitto    a private Mosquitto on a free port; ``free_port``, ``wait_port``
ingest       the ingest tests' helpers: ``Station`` (station-side MQTT client),
             ``IngestProcess``, ``AmqttBroker``, ``counts``, ``screw_step``,
             ``broker_conf``, ``PREFIX``
bridge       the bridge tests' helpers: ``Subscriber``, ``publish``, ``write_config``,
             ``wait_opened``
building     build units through the real orders and station services
units        release demo units for station tests
pdf_text     the text an fpdf2 PDF draws
credentials  a broker set up like production by ``taktline mqtt-credentials``:
             ``credentials``, ``password``, ``Bridge`` (station KIT-1 with its login)
hostile      payloads built to break a decoder or a database (``HOSTILE``)
"""
