// A stand-in entrypoint: the sandbox checks that the card's entrypoint exists, it does not render it.
import { hubspot, Text } from "@hubspot/ui-extensions";

hubspot.extend(() => <Text>Customer health</Text>);
